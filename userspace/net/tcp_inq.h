#pragma once
// Reads that say whether the socket is empty now (tcp(7), TCP_INQ, Linux 4.18+). With the
// option on, each recvmsg(2) that reads carries a TCP_CM_INQ control message: the bytes still
// queued, or 1 when none is but a FIN has arrived ("keep reading"; tcp_inq_hint() in
// net/ipv4/tcp.c, as in 6.1). So a hint of 0 proves no byte and no FIN is left, where a
// short read proves nothing (the FIN may have come with the bytes, and raises no later
// wake-up): a read that would only return EAGAIN is not needed (net/ready_wait.h says when
// the wait may then be queued). A reset is in no hint.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/types.h>

#include <cstddef>

#include <boost/asio/detail/socket_option.hpp>

namespace snigate::net {

// Set on a listening socket, accepted ones inherit it (no system call per client); set on
// each upstream socket where it is opened.
using tcp_inq = boost::asio::detail::socket_option::boolean<IPPROTO_TCP, TCP_INQ>;

struct Received {
  ssize_t n;         // as recv(2): bytes, 0 at the end of the stream, -1 with errno
  bool nothing_left; // the read's hint was 0: no byte and no FIN left after it
};

// recv(2) of up to `len` bytes from non-blocking `fd` (retried on EINTR). nothing_left is
// false without TCP_INQ on the socket (no hint comes), or when nothing was read.
Received recv_with_hint(int fd, void* buffer, std::size_t len);

}  // namespace snigate::net
