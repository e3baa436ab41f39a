// Connecting to real loopback sockets on 127.0.2.x: which server answers, what each failed
// attempt reports, and that the pool hears about every outcome. epoll_ctl(2) and
// timerfd_settime(2) are interposed (asio's header-only reactor is compiled into this binary)
// to see which connects wait for the handshake and which set a timer.
#include <gtest/gtest.h>

#include <dlfcn.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include <atomic>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "upstream/connect.h"

namespace {
std::atomic<int> epoll_mods{0};
std::atomic<int> timer_sets{0};
}  // namespace

extern "C" int epoll_ctl(int epfd, int op, int fd, epoll_event* event) noexcept {
  using Real = int (*)(int, int, int, epoll_event*);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "epoll_ctl"));
  if (op == EPOLL_CTL_MOD) ++epoll_mods;
  return real(epfd, op, fd, event);
}

extern "C" int timerfd_settime(int fd, int flags, const itimerspec* value,
                               itimerspec* old) noexcept {
  using Real = int (*)(int, int, const itimerspec*, itimerspec*);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "timerfd_settime"));
  ++timer_sets;
  return real(fd, flags, value, old);
}

namespace snigate::upstream {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

const auto kAcceptingAddress = asio::ip::make_address("127.0.2.1");
const auto kRefusingAddress = asio::ip::make_address("127.0.2.2");
const auto kBlackholeAddress = asio::ip::make_address("127.0.2.3");

config::ServerConfig server_at(const tcp::endpoint& e) {
  config::ServerConfig s;
  s.host = e.address().to_string();
  s.port = e.port();
  s.text = s.host + ":" + std::to_string(s.port);
  return s;
}

class ConnectTest : public ::testing::Test {
 protected:
  asio::io_context io;
  tcp::acceptor accepting{io, tcp::endpoint(kAcceptingAddress, 0)};
  // Bound but not listening: the kernel answers a SYN with RST, so a connect is refused.
  tcp::socket refusing{io, tcp::endpoint(kRefusingAddress, 0)};

  ConnectResult run(UpstreamPool& pool, const config::BackendConfig& backend,
                    std::span<const std::uint8_t> first = {}) {
    std::optional<ConnectResult> out;
    asio::co_spawn(io, connect_upstream(pool, backend, first),
                   [&](std::exception_ptr e, ConnectResult r) {
                     if (e) std::rethrow_exception(e);
                     out = std::move(r);
                   });
    // Bounded: the longest case waits for one 300 ms timeout.
    io.run_for(10s);
    io.restart();
    EXPECT_TRUE(out) << "connect_upstream did not finish";
    return out ? std::move(*out) : ConnectResult{};
  }

  // Proves the returned socket reaches the accepting listener: bytes written arrive there.
  void expect_reaches_accepting(tcp::socket& s) {
    tcp::socket peer(io);
    accepting.accept(peer);
    asio::write(s, asio::buffer(std::string("ping")));
    std::string got(4, '\0');
    asio::read(peer, asio::buffer(got));
    EXPECT_EQ(got, "ping");
  }

  // What `s` sent to `listener`'s next connection, read up to the FIN that `s` then sends.
  std::string received_at(tcp::acceptor& listener, tcp::socket& s) {
    tcp::socket peer(io);
    listener.accept(peer);
    s.shutdown(tcp::socket::shutdown_send);
    std::string got;
    boost::system::error_code ec;
    asio::read(peer, asio::dynamic_buffer(got), ec);
    EXPECT_EQ(ec, asio::error::eof);
    return got;
  }
};

TEST_F(ConnectTest, RefusedServerIsSkippedAndReported) {
  config::BackendConfig b;
  b.servers = {server_at(refusing.local_endpoint()), server_at(accepting.local_endpoint())};
  b.max_tries = 3;
  UpstreamPool pool(b);
  ConnectResult r = run(pool, b);
  ASSERT_TRUE(r.socket);
  EXPECT_EQ(r.remote, accepting.local_endpoint());
  ASSERT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.attempts[0].server, b.servers[0].text);
  EXPECT_EQ(r.attempts[0].error, asio::error::connection_refused);
  EXPECT_FALSE(r.attempts[1].error);
  // max_fails = 1: the refusal marked the server down, the success left the other up.
  EXPECT_FALSE(pool.is_up(0));
  EXPECT_TRUE(pool.is_up(1));
  expect_reaches_accepting(*r.socket);
  // The next connection goes straight to the live server.
  ConnectResult again = run(pool, b);
  ASSERT_TRUE(again.socket);
  EXPECT_EQ(again.attempts.size(), 1u);
}

// What the connection sends first goes out with the connect: a refused server reports the
// refusal (the send fails with it, nothing is sent), and the server that accepts gets the
// bytes once, before anything else.
TEST_F(ConnectTest, FirstBytesReachTheServerThatAcceptsAfterARefusal) {
  config::BackendConfig b;
  b.servers = {server_at(refusing.local_endpoint()), server_at(accepting.local_endpoint())};
  b.max_tries = 3;
  UpstreamPool pool(b);
  const std::vector<std::uint8_t> hello{'h', 'e', 'l', 'l', 'o'};
  ConnectResult r = run(pool, b, hello);
  ASSERT_TRUE(r.socket);
  ASSERT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.attempts[0].error, asio::error::connection_refused);
  EXPECT_FALSE(r.attempts[1].error);
  EXPECT_EQ(r.sent, hello.size());
  EXPECT_EQ(received_at(accepting, *r.socket), "hello");
}

// To a loopback server the handshake is over when connect(2) returns, so the first bytes go
// out at once: no wait for writability (asio would add EPOLLOUT with an EPOLL_CTL_MOD) and no
// connect_timeout timer (a timerfd_settime, as this loop has no other timer).
TEST_F(ConnectTest, LoopbackServerGetsFirstBytesWithoutAWaitOrATimer) {
  config::BackendConfig b;
  b.servers = {server_at(accepting.local_endpoint())};
  UpstreamPool pool(b);
  const std::vector<std::uint8_t> hello{'h', 'e', 'l', 'l', 'o'};
  epoll_mods = 0;
  timer_sets = 0;
  ConnectResult r = run(pool, b, hello);
  EXPECT_EQ(epoll_mods.load(), 0);
  EXPECT_EQ(timer_sets.load(), 0);
  ASSERT_TRUE(r.socket);
  EXPECT_EQ(r.sent, hello.size());
  EXPECT_EQ(received_at(accepting, *r.socket), "hello");
}

// A loopback server whose accept queue is full drops the SYN, so the first send finds the
// connect still under way (EAGAIN) and the attempt waits as before; once the queue has room
// the retransmitted SYN (after about a second) gets through and the bytes arrive, once.
TEST_F(ConnectTest, LoopbackServerThatAcceptsLateGetsFirstBytesOnce) {
  tcp::acceptor late(io, tcp::endpoint(kBlackholeAddress, 0));
  ASSERT_EQ(::listen(late.native_handle(), 0), 0);
  tcp::socket filler(io);
  filler.connect(late.local_endpoint());
  config::BackendConfig b;
  b.servers = {server_at(late.local_endpoint())};
  b.connect_timeout = 5s;
  UpstreamPool pool(b);
  // Room in the queue only after the connect has started and found it full.
  asio::steady_timer room(io, 100ms);
  tcp::socket filler_peer(io);
  room.async_wait([&](boost::system::error_code) { late.accept(filler_peer); });
  const std::vector<std::uint8_t> hello{'h', 'e', 'l', 'l', 'o'};
  epoll_mods = 0;
  ConnectResult r = run(pool, b, hello);
  EXPECT_GE(epoll_mods.load(), 1);  // it waited for writability
  ASSERT_TRUE(r.socket);
  ASSERT_EQ(r.attempts.size(), 1u);
  EXPECT_FALSE(r.attempts[0].error) << r.attempts[0].error.message();
  EXPECT_EQ(r.sent, hello.size());
  EXPECT_EQ(received_at(late, *r.socket), "hello");
}

TEST_F(ConnectTest, SilentServerTimesOutThenTheNextAnswers) {
  // A listener that never accepts, with a backlog of 0 filled by one connection: the kernel
  // drops further SYNs, so a connect hangs as it would towards a dead host.
  tcp::acceptor blackhole(io, tcp::endpoint(kBlackholeAddress, 0));
  ASSERT_EQ(::listen(blackhole.native_handle(), 0), 0);
  tcp::socket filler(io);
  filler.connect(blackhole.local_endpoint());
  config::BackendConfig b;
  b.servers = {server_at(blackhole.local_endpoint()), server_at(accepting.local_endpoint())};
  b.connect_timeout = 300ms;
  UpstreamPool pool(b);
  ConnectResult r = run(pool, b);
  ASSERT_TRUE(r.socket);
  ASSERT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.attempts[0].error, asio::error::timed_out);
  EXPECT_GE(r.attempts[0].took, 300ms);
  EXPECT_EQ(r.remote, accepting.local_endpoint());
  EXPECT_FALSE(pool.is_up(0));
  expect_reaches_accepting(*r.socket);
}

TEST_F(ConnectTest, TriesAreBoundedByMaxTries) {
  tcp::socket refusing2(io, tcp::endpoint(kRefusingAddress, 0));
  config::BackendConfig b;
  b.servers = {server_at(refusing.local_endpoint()), server_at(refusing2.local_endpoint()),
               server_at(accepting.local_endpoint())};
  b.max_tries = 2;
  UpstreamPool pool(b);
  ConnectResult r = run(pool, b);
  EXPECT_FALSE(r.socket);
  ASSERT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.attempts[0].error, asio::error::connection_refused);
  EXPECT_EQ(r.attempts[1].error, asio::error::connection_refused);
}

TEST_F(ConnectTest, EveryServerRefusingEndsWithoutSocket) {
  config::BackendConfig b;
  b.servers = {server_at(refusing.local_endpoint())};
  UpstreamPool pool(b);
  ConnectResult r = run(pool, b);
  EXPECT_FALSE(r.socket);
  // A lone server is not tried twice within one connection.
  ASSERT_EQ(r.attempts.size(), 1u);
  EXPECT_EQ(r.attempts[0].error, asio::error::connection_refused);
}

TEST_F(ConnectTest, HostnamesGoThroughTheAsyncResolver) {
  // "127.0.513" is not an address literal to make_address (inet_pton), so it takes the resolver
  // path; getaddrinfo reads it with inet_aton as 127.0.2.1 without asking any DNS server.
  config::BackendConfig b;
  config::ServerConfig s;
  s.host = "127.0.513";
  s.port = accepting.local_endpoint().port();
  s.text = "127.0.513:" + std::to_string(s.port);
  b.servers = {s};
  UpstreamPool pool(b);
  ConnectResult r = run(pool, b);
  ASSERT_TRUE(r.socket) << r.attempts[0].error.message();
  EXPECT_EQ(r.remote, accepting.local_endpoint());
  expect_reaches_accepting(*r.socket);
}

TEST_F(ConnectTest, Ipv6LiteralServer) {
  tcp::acceptor v6(io);
  boost::system::error_code ec;
  v6.open(tcp::v6());
  v6.bind(tcp::endpoint(asio::ip::make_address("::1"), 0), ec);
  if (ec) GTEST_SKIP() << "no ::1 on this machine: " << ec.message();
  v6.listen();
  config::BackendConfig b;
  b.servers = {server_at(v6.local_endpoint())};
  UpstreamPool pool(b);
  ConnectResult r = run(pool, b);
  ASSERT_TRUE(r.socket);
  EXPECT_EQ(r.remote, v6.local_endpoint());
}

}  // namespace
}  // namespace snigate::upstream
