#pragma once
// The kernel's own byte accounting of a TCP socket, which the sockmap relay's close path and
// flow control are built on (kept apart from asio: <linux/tcp.h> and <netinet/tcp.h> clash).
#include <cstddef>
#include <cstdint>
#include <optional>

namespace snigate::relay::sockmap {

// Every byte ever written to the socket: acked by the receiver (tcpi_bytes_acked) plus still
// in the send queue (SIOCOUTQ). Read in that order, so a concurrent ACK can only make the sum
// smaller than the truth, never larger. nullopt when the socket is gone.
std::optional<std::uint64_t> bytes_written(int fd);

// Bytes in the receive queue not read yet (SIOCINQ); 0 when none or on error.
std::size_t unread_bytes(int fd);

// The pending socket error (SO_ERROR), 0 when none.
int pending_error(int fd);

// Fixes the receive buffer at twice the inflight cap, within 2..32 MiB (the kernel doubles
// what SO_RCVBUF asks): what a paused direction may hold in its receive queue. Forced past
// net.core.rmem_max where allowed (CAP_NET_ADMIN), which a cap above it needs.
void clamp_receive_buffer(int fd, std::uint64_t inflight_cap);

// Runs the stream verdict over bytes that reached the receive queue before the socket was
// put in the sockhash: setting SO_RCVLOWAT makes TCP check readiness and call the socket's
// data_ready, which the psock has replaced by its verdict entry point.
bool kick_verdict(int fd);

}  // namespace snigate::relay::sockmap
