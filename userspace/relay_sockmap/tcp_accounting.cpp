#include "relay_sockmap/tcp_accounting.h"

#include <linux/sockios.h>
#include <linux/tcp.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace snigate::relay::sockmap {

std::optional<std::uint64_t> bytes_written(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return std::nullopt;
  int outq = 0;
  if (::ioctl(fd, SIOCOUTQ, &outq) != 0) return std::nullopt;
  return info.tcpi_bytes_acked + static_cast<std::uint64_t>(outq);
}

std::size_t unread_bytes(int fd) {
  int n = 0;
  if (::ioctl(fd, SIOCINQ, &n) != 0 || n < 0) return 0;
  return static_cast<std::size_t>(n);
}

int pending_error(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return 0;
  return err;
}

void clamp_receive_buffer(int fd, std::uint64_t inflight_cap) {
  constexpr std::uint64_t lo = 1u << 20, hi = 16u << 20;
  int half = static_cast<int>(inflight_cap < lo ? lo : inflight_cap > hi ? hi : inflight_cap);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &half, sizeof(half)) != 0)
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &half, sizeof(half));
}

bool kick_verdict(int fd) {
  int one = 1;
  return ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one)) == 0;
}

}  // namespace snigate::relay::sockmap
