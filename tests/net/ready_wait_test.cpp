// net::async_wait_after_would_block: after an EAGAIN the wait wakes on whatever comes next
// (bytes, FIN, reset, room to write, a connection), completes once with operation_aborted when
// its socket is closed or cancelled, frees its handler, and costs no epoll_ctl(2): counted
// here by interposing epoll_ctl, which asio's header-only reactor compiled into this binary
// calls. net::known_empty: what reads proved (TCP_INQ's hint, net/tcp_inq.h) and what epoll
// reported since.
#include <dlfcn.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "net/nonblocking_socket.h"
#include "net/ready_wait.h"
#include "net/tcp_inq.h"

namespace {
// epoll_ctl(2) calls on one descriptor (-1: none watched).
std::atomic<int> watched_fd{-1};
std::atomic<int> watched_calls{0};
}  // namespace

extern "C" int epoll_ctl(int epfd, int op, int fd, epoll_event* event) noexcept {
  using Real = int (*)(int, int, int, epoll_event*);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "epoll_ctl"));
  if (fd == watched_fd.load()) ++watched_calls;
  return real(epfd, op, fd, event);
}

namespace snigate::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

// One connected loopback pair on `io`: `near` is the side under test, `far` its peer.
struct Pair {
  explicit Pair(asio::io_context& io) : acceptor(io), near(io), far(io) {
    acceptor.open(tcp::v4());
    acceptor.bind({asio::ip::address_v4::loopback(), 0});
    acceptor.listen();
    far.connect(acceptor.local_endpoint());
    acceptor.accept(near);
    near.non_blocking(true);
    far.non_blocking(true);
  }
  tcp::acceptor acceptor;
  tcp::socket near;
  tcp::socket far;
};

// Reads what `s` holds, up to a bound; true when the last read would block.
bool drain(tcp::socket& s, std::size_t* got = nullptr) {
  char buf[65536];
  for (int i = 0; i < 10000; ++i) {
    ssize_t n = ::recv(s.native_handle(), buf, sizeof buf, 0);
    if (n < 0) return errno == EAGAIN;
    if (n == 0) return false;
    if (got) *got += static_cast<std::size_t>(n);
  }
  return false;
}

// What one wait saw: how many times its handler ran, and with what.
struct Seen {
  int calls = 0;
  error_code ec;
};

auto record(Seen& seen) {
  return [&seen](const error_code& ec) {
    ++seen.calls;
    seen.ec = ec;
  };
}

// Runs `io` until `seen` completes, at most 5 s (restarted: a run stops once it is out of
// work, as after an earlier wait completed).
void run_until(asio::io_context& io, const Seen& seen) {
  io.restart();
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (seen.calls == 0 && std::chrono::steady_clock::now() < until) io.run_one_for(100ms);
}

void send_byte(tcp::socket& s) {
  ASSERT_EQ(::send(s.native_handle(), "x", 1, MSG_NOSIGNAL), 1);
}

TEST(ReadyWait, WakesOnBytesSentAfterItIsQueued) {
  asio::io_context io;
  Pair p(io);
  ASSERT_TRUE(drain(p.near));
  Seen seen;
  async_wait_after_would_block(p.near, tcp::socket::wait_read, record(seen));
  io.poll();  // runs the reactor once: nothing has come, the wait stays queued
  EXPECT_EQ(seen.calls, 0);
  send_byte(p.far);
  run_until(io, seen);
  EXPECT_EQ(seen.calls, 1);
  EXPECT_FALSE(seen.ec);
  std::size_t got = 0;
  EXPECT_TRUE(drain(p.near, &got));
  EXPECT_EQ(got, 1u);
}

TEST(ReadyWait, WakesOnBytesThatCameBetweenTheEagainAndTheWait) {
  asio::io_context io;
  Pair p(io);
  ASSERT_TRUE(drain(p.near));
  send_byte(p.far);
  Seen seen;
  async_wait_after_would_block(p.near, tcp::socket::wait_read, record(seen));
  run_until(io, seen);
  EXPECT_EQ(seen.calls, 1);
  EXPECT_FALSE(seen.ec);
}

TEST(ReadyWait, WakesOnFin) {
  asio::io_context io;
  Pair p(io);
  ASSERT_TRUE(drain(p.near));
  Seen seen;
  async_wait_after_would_block(p.near, tcp::socket::wait_read, record(seen));
  io.poll();
  p.far.shutdown(tcp::socket::shutdown_send);
  run_until(io, seen);
  EXPECT_EQ(seen.calls, 1);
  char c;
  EXPECT_EQ(::recv(p.near.native_handle(), &c, 1, 0), 0);  // the end of the stream
}

TEST(ReadyWait, WakesOnReset) {
  asio::io_context io;
  Pair p(io);
  ASSERT_TRUE(drain(p.near));
  Seen seen;
  async_wait_after_would_block(p.near, tcp::socket::wait_read, record(seen));
  io.poll();
  p.far.set_option(tcp::socket::linger(true, 0));
  p.far.close();  // RST
  run_until(io, seen);
  EXPECT_EQ(seen.calls, 1);
  char c;
  EXPECT_EQ(::recv(p.near.native_handle(), &c, 1, 0), -1);
  EXPECT_EQ(errno, ECONNRESET);
}

// Fills near's send buffer and far's receive buffer until a send would block.
std::size_t fill(tcp::socket& s) {
  static const char chunk[65536] = {};
  std::size_t sent = 0;
  for (int i = 0; i < 10000; ++i) {
    ssize_t n = ::send(s.native_handle(), chunk, sizeof chunk, MSG_NOSIGNAL);
    if (n < 0) {
      EXPECT_EQ(errno, EAGAIN);
      return sent;
    }
    sent += static_cast<std::size_t>(n);
  }
  ADD_FAILURE() << "the send buffer never filled";
  return sent;
}

// Reads `bytes` from `s`, waiting for them 5 s at most.
void read_all(tcp::socket& s, std::size_t bytes) {
  std::size_t got = 0;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (got < bytes && std::chrono::steady_clock::now() < until) {
    pollfd readable{s.native_handle(), POLLIN, 0};
    ::poll(&readable, 1, 100);
    drain(s, &got);
  }
  ASSERT_EQ(got, bytes);
}

TEST(ReadyWait, WakesWhenRoomComesBackAfterAFullSend) {
  asio::io_context io;
  Pair p(io);
  const std::size_t sent = fill(p.near);
  Seen seen;
  async_wait_after_would_block(p.near, tcp::socket::wait_write, record(seen));
  io.poll();
  EXPECT_EQ(seen.calls, 0);
  read_all(p.far, sent);
  run_until(io, seen);
  EXPECT_EQ(seen.calls, 1);
  EXPECT_FALSE(seen.ec);
}

TEST(ReadyWait, AcceptorWakesOnAConnection) {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
  acceptor.non_blocking(true);
  error_code ec;
  tcp::socket none(io);
  acceptor.accept(none, ec);
  ASSERT_EQ(ec, asio::error::would_block);
  Seen seen;
  async_wait_after_would_block(acceptor, tcp::acceptor::wait_read, record(seen));
  io.poll();
  EXPECT_EQ(seen.calls, 0);
  tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  run_until(io, seen);
  EXPECT_EQ(seen.calls, 1);
  tcp::socket accepted(io);
  acceptor.accept(accepted, ec);
  EXPECT_FALSE(ec);
}

// The handler holds `token`: once it is gone, the wait freed everything it held.
struct Held {
  std::shared_ptr<int> token = std::make_shared<int>(0);
  Seen seen;
  auto handler() {
    return [this, t = token](const error_code& ec) {
      ++seen.calls;
      seen.ec = ec;
    };
  }
};

TEST(ReadyWait, CloseCompletesItOnceWithOperationAborted) {
  asio::io_context io;
  Pair p(io);
  ASSERT_TRUE(drain(p.near));
  Held read, write;
  fill(p.near);
  async_wait_after_would_block(p.near, tcp::socket::wait_read, read.handler());
  async_wait_after_would_block(p.near, tcp::socket::wait_write, write.handler());
  io.poll();
  p.near.close();
  io.run();  // returns: nothing else is pending
  for (Held* h : {&read, &write}) {
    EXPECT_EQ(h->seen.calls, 1);
    EXPECT_EQ(h->seen.ec, asio::error::operation_aborted);
    EXPECT_EQ(h->token.use_count(), 1);
  }
}

TEST(ReadyWait, CancelCompletesItOnceWithOperationAborted) {
  asio::io_context io;
  Pair p(io);
  ASSERT_TRUE(drain(p.near));
  Held read;
  async_wait_after_would_block(p.near, tcp::socket::wait_read, read.handler());
  io.poll();
  p.near.cancel();
  io.run();
  EXPECT_EQ(read.seen.calls, 1);
  EXPECT_EQ(read.seen.ec, asio::error::operation_aborted);
  EXPECT_EQ(read.token.use_count(), 1);
  // The socket still works: bytes wake the next wait.
  Seen seen;
  async_wait_after_would_block(p.near, tcp::socket::wait_read, record(seen));
  send_byte(p.far);
  run_until(io, seen);
  EXPECT_EQ(seen.calls, 1);
  EXPECT_FALSE(seen.ec);
}

TEST(ReadyWait, ClosedSocketCompletesWithBadDescriptor) {
  asio::io_context io;
  tcp::socket closed(io);
  Seen seen;
  async_wait_after_would_block(closed, tcp::socket::wait_read, record(seen));
  io.run();
  EXPECT_EQ(seen.calls, 1);
  EXPECT_EQ(seen.ec, asio::error::bad_descriptor);
}

TEST(ReadyWait, AWaitLeftQueuedIsFreedWithItsEventLoop) {
  Held read;
  {
    asio::io_context io;
    Pair p(io);
    ASSERT_TRUE(drain(p.near));
    async_wait_after_would_block(p.near, tcp::socket::wait_read, read.handler());
    io.poll();
  }
  EXPECT_EQ(read.seen.calls, 0);
  EXPECT_EQ(read.token.use_count(), 1);
}

// asio's async_wait costs one EPOLL_CTL_MOD per wait; these cost none (a write wait adds
// EPOLLOUT to the registration once per socket).
TEST(ReadyWait, WaitsCostNoEpollCtl) {
  asio::io_context io;
  Pair p(io);
  constexpr int kWaits = 20;
  watched_fd = p.near.native_handle();
  watched_calls = 0;
  for (int i = 0; i < kWaits; ++i) {
    ASSERT_TRUE(drain(p.near));
    Seen seen;
    async_wait_after_would_block(p.near, tcp::socket::wait_read, record(seen));
    send_byte(p.far);
    run_until(io, seen);
    ASSERT_EQ(seen.calls, 1) << i;
  }
  EXPECT_EQ(watched_calls.load(), 0);

  watched_calls = 0;
  for (int i = 0; i < kWaits; ++i) {
    const std::size_t sent = fill(p.near);
    Seen seen;
    async_wait_after_would_block(p.near, tcp::socket::wait_write, record(seen));
    read_all(p.far, sent);
    run_until(io, seen);
    ASSERT_EQ(seen.calls, 1);
  }
  EXPECT_EQ(watched_calls.load(), 1);
  watched_fd = -1;
}

// near with TCP_INQ: each read says whether a byte or FIN is left.
void hint_reads(Pair& p) {
  ASSERT_NO_THROW(p.near.set_option(tcp_inq(true)));
}

TEST(KnownEmpty, OnlyAfterAReadProvedItAndUntilEpollReportsAnything) {
  asio::io_context io;
  Pair p(io);
  hint_reads(p);
  EXPECT_FALSE(known_empty(p.near));  // nothing read yet
  ASSERT_TRUE(drain(p.near));
  note_read(p.near, ReadShowed::WouldBlock);
  EXPECT_TRUE(known_empty(p.near));

  send_byte(p.far);
  // epoll reports the byte while no wait is queued (a later wait would miss it): the event
  // loop, kept from stopping, runs its reactor and performs what it reported.
  {
    auto busy = asio::make_work_guard(io);
    io.poll();
  }
  EXPECT_FALSE(known_empty(p.near));

  char buf[16];
  Received r = recv_with_hint(p.near.native_handle(), buf, sizeof buf);
  ASSERT_EQ(r.n, 1);
  EXPECT_TRUE(r.nothing_left);
  note_read(p.near, ReadShowed::NothingLeft);
  EXPECT_TRUE(known_empty(p.near));
  // ...and a wait queued then wakes on the next byte.
  Seen seen;
  async_wait_after_would_block(p.near, tcp::socket::wait_read, record(seen));
  send_byte(p.far);
  run_until(io, seen);
  EXPECT_EQ(seen.calls, 1);
}

TEST(KnownEmpty, AFinLeftAfterTheBytesIsInTheHint) {
  asio::io_context io;
  Pair p(io);
  hint_reads(p);
  ASSERT_EQ(::send(p.far.native_handle(), "bye", 3, MSG_NOSIGNAL), 3);
  p.far.shutdown(tcp::socket::shutdown_send);
  char buf[16];
  Received r{};
  for (int i = 0; i < 500 && r.n <= 0; ++i) {  // the bytes may take a moment
    r = recv_with_hint(p.near.native_handle(), buf, sizeof buf);
    if (r.n < 0) ::poll(nullptr, 0, 10);
  }
  ASSERT_EQ(r.n, 3);
  EXPECT_FALSE(r.nothing_left);  // the FIN is still to read
  EXPECT_EQ(recv_with_hint(p.near.native_handle(), buf, sizeof buf).n, 0);
}

// epoll_wait reports the byte before a posted handler reads it (the event loop runs its
// reactor first, then the handler, then the report): the report is stale by then, and the
// wait queued after the read sleeps until something new comes.
TEST(KnownEmpty, AReportOlderThanTheReadWakesNoWait) {
  asio::io_context io;
  Pair p(io);
  hint_reads(p);
  ASSERT_TRUE(drain(p.near));
  note_read(p.near, ReadShowed::WouldBlock);
  send_byte(p.far);
  Seen seen;
  bool read = false;
  asio::post(io, [&] {
    char buf[16];
    Received r = recv_with_hint(p.near.native_handle(), buf, sizeof buf);
    ASSERT_EQ(r.n, 1);
    ASSERT_TRUE(r.nothing_left);
    note_read(p.near, ReadShowed::NothingLeft);
    ASSERT_TRUE(known_empty(p.near));
    read = true;
    async_wait_after_would_block(p.near, tcp::socket::wait_read, record(seen));
  });
  io.poll();
  ASSERT_TRUE(read);
  EXPECT_EQ(seen.calls, 0) << "woken by the report of the byte it had read";
  send_byte(p.far);
  run_until(io, seen);
  EXPECT_EQ(seen.calls, 1);
}

// A reset is in no hint: reported by epoll before the read that returned the last bytes, it
// keeps the socket unknown until a read has seen it.
TEST(KnownEmpty, AResetReportedBeforeTheReadIsNotProvedAway) {
  asio::io_context io;
  Pair p(io);
  hint_reads(p);
  ASSERT_TRUE(drain(p.near));
  note_read(p.near, ReadShowed::WouldBlock);
  Seen seen;
  async_wait_after_would_block(p.near, tcp::socket::wait_read, record(seen));
  io.poll();
  send_byte(p.far);
  p.far.set_option(tcp::socket::linger(true, 0));
  p.far.close();  // RST, right behind the byte
  run_until(io, seen);
  ASSERT_EQ(seen.calls, 1);

  char buf[16];
  Received r = recv_with_hint(p.near.native_handle(), buf, sizeof buf);
  ASSERT_EQ(r.n, 1);
  EXPECT_TRUE(r.nothing_left);
  note_read(p.near, ReadShowed::NothingLeft);
  EXPECT_FALSE(known_empty(p.near));
  EXPECT_EQ(recv_with_hint(p.near.native_handle(), buf, sizeof buf).n, -1);
  EXPECT_EQ(errno, ECONNRESET);
}


// An upstream socket is opened, registered with epoll, then connected: whatever it receives
// comes after its registration and raises an edge, so it needs no read before its first wait
// (a backend on loopback may have answered before the relay starts).
TEST(KnownEmpty, ASocketJustOpenedIsAndWhatItThenReceivesWakesAWait) {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
  tcp::socket near(io);
  error_code ec;
  open_nonblocking(near, tcp::v4(), ec);
  ASSERT_FALSE(ec);
  EXPECT_TRUE(known_empty(near));
  const tcp::endpoint to = acceptor.local_endpoint();
  const int rc = ::connect(near.native_handle(), to.data(), static_cast<socklen_t>(to.size()));
  ASSERT_TRUE(rc == 0 || errno == EINPROGRESS);
  tcp::socket far(io);
  acceptor.accept(far);
  send_byte(far);  // in before the wait is queued
  Seen seen;
  async_wait_after_would_block(near, tcp::socket::wait_read, record(seen));
  run_until(io, seen);
  EXPECT_EQ(seen.calls, 1);
  EXPECT_FALSE(seen.ec);
}

}  // namespace
}  // namespace snigate::net
