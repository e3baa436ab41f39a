// What the copy relay's reads cost: with TCP_INQ on its sockets (the daemon's), a burst that
// the read takes whole costs that one read, no second one to find EAGAIN (net/tcp_inq.h,
// net/ready_wait.h's known_empty). Counted by interposing recv(2) and recvmsg(2), which the
// relay compiled into this binary calls.
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "relay/copy_relay.h"
#include "socket_pair.h"

namespace {
// Reads of one descriptor (-1: none watched), and those that found nothing.
std::atomic<int> watched_fd{-1};
std::atomic<int> reads{0};
std::atomic<int> would_block{0};

void count(int fd, ssize_t n) {
  if (fd != watched_fd.load()) return;
  ++reads;
  if (n < 0 && errno == EAGAIN) ++would_block;
}
}  // namespace

extern "C" ssize_t recv(int fd, void* buf, size_t len, int flags) {
  using Real = ssize_t (*)(int, void*, size_t, int);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "recv"));
  const ssize_t n = real(fd, buf, len, flags);
  count(fd, n);
  return n;
}

extern "C" ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  using Real = ssize_t (*)(int, msghdr*, int);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "recvmsg"));
  const ssize_t n = real(fd, msg, flags);
  count(fd, n);
  return n;
}

namespace snigate::relay {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// `a` inherits TCP_INQ from the listening socket, as the daemon's clients do.
struct Pair : test::SocketPair {
  explicit Pair(asio::io_context& io) : SocketPair(io, true) {}
};

TEST(CopyRelayReads, EachBurstCostsOneRead) {
  asio::io_context io;
  Pair client(io), upstream(io);
  CopyRelay relay;
  Options options;
  Counters counters;
  relay.start(client.a, upstream.a, options, counters, [](Result) {});
  io.poll();  // each direction reads once, finds nothing and waits
  watched_fd = client.a.native_handle();
  reads = would_block = 0;

  constexpr int kBursts = 5;
  for (int i = 0; i < kBursts; ++i) {
    const std::string burst = "burst " + std::to_string(i);
    ASSERT_EQ(::send(client.b.native_handle(), burst.data(), burst.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(burst.size()));
    // The backend gets it, 5 s at most; the relay then waits again.
    std::string got;
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (got.size() < burst.size() && std::chrono::steady_clock::now() < until) {
      io.restart();
      io.run_one_for(10ms);
      char buf[64];
      ssize_t n = ::recv(upstream.b.native_handle(), buf, sizeof buf, 0);
      if (n > 0) got.append(buf, static_cast<std::size_t>(n));
    }
    ASSERT_EQ(got, burst);
    io.restart();
    io.poll();
  }
  watched_fd = -1;
  EXPECT_EQ(would_block.load(), 0);
  EXPECT_EQ(reads.load(), kBursts);
  client.a.close();  // ends the relay before its sockets go
  upstream.a.close();
  io.restart();
  io.poll();
}

}  // namespace
}  // namespace snigate::relay
