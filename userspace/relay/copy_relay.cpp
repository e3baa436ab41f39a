#include "relay/copy_relay.h"

#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "relay/flow.h"

namespace snigate::relay {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

error_code last_error() {
  return errno == EAGAIN ? error_code(asio::error::would_block)
                         : error_code(errno, boost::system::system_category());
}

// Buffers kept for reuse by this worker thread: a direction holds one only while it moves
// bytes, so an idle connection holds none and a busy one costs no allocation per burst.
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

// Read into a userspace buffer, written out from it; unwritten bytes wait at `offset`.
class CopyFlow final : public detail::Flow {
 public:
  using Flow::Flow;

 private:
  std::size_t read(int d, tcp::socket& from, std::size_t max, error_code& ec) override {
    auto& b = buffer_[d];
    if (!b) b = BufferPool::local().take(max);
    offset_[d] = 0;
    ssize_t n = ::recv(from.native_handle(), b.get(), max, 0);
    if (n > 0) return static_cast<std::size_t>(n);
    ec = n == 0 ? error_code(asio::error::eof) : last_error();
    return 0;
  }

  std::size_t write(int d, tcp::socket& to, std::size_t held, error_code& ec) override {
    ssize_t n = ::send(to.native_handle(), buffer_[d].get() + offset_[d], held, MSG_NOSIGNAL);
    if (n < 0) {
      ec = last_error();
      return 0;
    }
    offset_[d] += static_cast<std::size_t>(n);
    return static_cast<std::size_t>(n);
  }

  void release(int d, bool) override {
    BufferPool::local().give(std::move(buffer_[d]), options().buffer_bytes);
  }

  BufferPool::Buffer buffer_[2];
  std::size_t offset_[2] = {0, 0};
};

}  // namespace

void CopyRelay::start(tcp::socket& client, tcp::socket& upstream, const Options& options,
                      Counters& counters, Done done) {
  counters.mode = Mode::Copy;
  // Set once per socket (asio's flag is read without a system call): the listener already
  // did for the client.
  error_code ignored;
  if (!client.non_blocking()) client.non_blocking(true, ignored);
  if (!upstream.non_blocking()) upstream.non_blocking(true, ignored);
  detail::start_flow<CopyFlow>(client, upstream, options, counters, std::move(done));
}

}  // namespace snigate::relay
