#pragma once
// Datagrams received several per system call (recvmmsg(2)) into buffers reused by every call:
// a listener's loop drains its socket, or a flow's upstream socket, in batches.
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <span>
#include <system_error>
#include <vector>

#include <boost/asio/ip/udp.hpp>

namespace snigate::quic {

class DatagramBatch {
 public:
  static constexpr std::size_t kSize = 8;
  // The largest UDP payload: a QUIC datagram may be any size up to it (RFC 9000 14), and one
  // cut short would not decrypt at its peer.
  static constexpr std::size_t kMaxDatagram = 65535;

  DatagramBatch();
  // What `fd` has queued, up to kSize datagrams, without blocking: how many arrived (0 when
  // none is waiting); an error such as ECONNREFUSED (the peer's port unreachable) in `error`.
  std::size_t receive(int fd, std::error_code& error);
  std::span<const std::uint8_t> datagram(std::size_t i) const;
  const boost::asio::ip::udp::endpoint& source(std::size_t i) const { return sources_[i]; }
  bool truncated(std::size_t i) const { return (headers_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0; }

 private:
  std::vector<std::uint8_t> buffer_;
  std::array<iovec, kSize> iov_{};
  std::array<mmsghdr, kSize> headers_{};
  std::array<boost::asio::ip::udp::endpoint, kSize> sources_;
};

}  // namespace snigate::quic
