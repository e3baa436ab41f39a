#pragma once
// Moving bytes through a userspace buffer, per direction: the copy relay's reads and writes
// (relay = "copy", and "auto").
#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <vector>

#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "net/last_error.h"
#include "net/tcp_inq.h"

namespace snigate::relay::detail {

// Buffers kept for reuse by one worker thread (a flow runs on its worker's thread only): a
// direction holds one only while it moves bytes, so an idle connection holds none and a busy
// one costs no allocation per burst.
class BufferPool {
 public:
  using Buffer = std::unique_ptr<char[]>;
  static BufferPool& local() {
    thread_local BufferPool pool;
    return pool;
  }
  Buffer take(std::size_t size) {
    if (size != size_) {
      free_.clear();  // sized for an earlier configuration
      size_ = size;
    }
    if (free_.empty()) return std::make_unique_for_overwrite<char[]>(size);
    Buffer b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void give(Buffer b, std::size_t size) {
    if (b && size == size_ && free_.size() < kMaxFree) free_.push_back(std::move(b));
  }

 private:
  static constexpr std::size_t kMaxFree = 16;
  std::size_t size_ = 0;
  std::vector<Buffer> free_;
};

// Read into a buffer taken from the pool, written out from it; unwritten bytes wait at
// `offset`. recv(2) on TCP returns less than asked only when the socket had no more; with
// TCP_INQ on the socket, each read also says whether a FIN is left to read (net/tcp_inq.h).
class CopyIo {
 public:
  using tcp = boost::asio::ip::tcp;

  std::size_t read(int d, tcp::socket& from, std::size_t max, boost::system::error_code& ec) {
    auto& b = buffer_[d];
    if (!b) b = BufferPool::local().take(max);
    offset_[d] = 0;
    const net::Received r = net::recv_with_hint(from.native_handle(), b.get(), max);
    nothing_left_[d] = r.nothing_left;
    if (r.n > 0) return static_cast<std::size_t>(r.n);
    ec = r.n == 0 ? boost::system::error_code(boost::asio::error::eof) : net::last_error();
    return 0;
  }

  // The last read on `d` left neither byte nor FIN (its TCP_INQ hint was 0).
  bool nothing_left(int d) const { return nothing_left_[d]; }

  std::size_t write(int d, tcp::socket& to, std::size_t held, boost::system::error_code& ec) {
    ssize_t n = ::send(to.native_handle(), buffer_[d].get() + offset_[d], held, MSG_NOSIGNAL);
    if (n < 0) {
      ec = net::last_error();
      return 0;
    }
    offset_[d] += static_cast<std::size_t>(n);
    return static_cast<std::size_t>(n);
  }

  void release(int d, std::size_t size) { BufferPool::local().give(std::move(buffer_[d]), size); }

 private:
  BufferPool::Buffer buffer_[2];
  std::size_t offset_[2] = {0, 0};
  bool nothing_left_[2] = {false, false};
};

}  // namespace snigate::relay::detail
