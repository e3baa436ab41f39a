#include "net/tcp_inq.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace snigate::net {

Received recv_with_hint(int fd, void* buffer, std::size_t len) {
  iovec iov{buffer, len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  for (;;) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    Received r{n, false};
    if (n <= 0) return r;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_TCP || c->cmsg_type != TCP_CM_INQ) continue;
      int inq;
      std::memcpy(&inq, CMSG_DATA(c), sizeof inq);
      r.nothing_left = inq == 0;
    }
    return r;
  }
}

}  // namespace snigate::net
