// Step 2 of the sockmap hand-off (relay_sockmap/unread_move.h) on loopback TCP, without BPF:
// what each side holds unread arrives once and in order, and a peer that stops reading ends
// the move at the idle timeout, not before: bytes still moving the other way keep it going.
#include "relay_sockmap/unread_move.h"

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "../relay/socket_pair.h"
#include "relay_sockmap/tcp_accounting.h"

namespace snigate::relay::sockmap {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Outcome = Moved::End;
// `a` is the relay's end, `b` the user's or the backend's.
using Pair = relay::test::SocketPair;

std::string pattern(std::size_t n, std::uint8_t seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7 + (i >> 11));
  return s;
}

// Sends `bytes` now, all of which must fit in the socket and its peer's queue.
void send_now(tcp::socket& s, const std::string& bytes) {
  ASSERT_EQ(::send(s.native_handle(), bytes.data(), bytes.size(), MSG_DONTWAIT),
            static_cast<ssize_t>(bytes.size()));
}

// Reads everything until EOF or an error.
asio::awaitable<void> read_all(tcp::socket& s, std::string& into) {
  std::vector<char> buf(64 * 1024);
  for (;;) {
    error_code ec;
    const std::size_t n = co_await s.async_read_some(
        asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    into.append(buf.data(), n);
    if (ec) co_return;
  }
}

// Writes `bytes` as the socket takes them (a backend with more to say than fits at once).
asio::awaitable<void> write_all(tcp::socket& s, const std::string& bytes) {
  error_code ec;
  co_await asio::async_write(s, asio::buffer(bytes), asio::redirect_error(asio::use_awaitable, ec));
}

// Writes `bytes` `chunk` at a time, `pause` between them, then holds the connection open.
asio::awaitable<void> write_slowly(tcp::socket& s, const std::string& bytes, std::size_t chunk,
                                   std::chrono::milliseconds pause) {
  asio::steady_timer timer(s.get_executor());
  for (std::size_t at = 0; at < bytes.size(); at += chunk) {
    error_code ec;
    co_await asio::async_write(
        s, asio::buffer(bytes.data() + at, std::min(chunk, bytes.size() - at)),
        asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    timer.expires_after(pause);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

struct Run {
  std::optional<Moved> moved;
  Clock::duration took{};
};

// Runs the move over the edge ends of `client` and `upstream`, and the io_context for at most
// `limit`: a move that never ends leaves `moved` empty.
Run run_move(asio::io_context& io, Pair& client, Pair& upstream, Counters& counters,
             std::chrono::milliseconds idle_timeout, std::chrono::seconds limit = 10s) {
  Run run;
  const auto start = Clock::now();
  asio::co_spawn(io, move_unread(client.a, upstream.a, counters, idle_timeout),
                 [&](std::exception_ptr e, Moved moved) {
                   if (!e) run.moved = moved;
                   run.took = Clock::now() - start;
                   // The peers' readers end on EOF, after every byte; after an idle timeout
                   // the peers' writers end too.
                   error_code ignored;
                   for (tcp::socket* edge : {&client.a, &upstream.a})
                     if (run.moved && run.moved->end == Outcome::IdleTimeout)
                       edge->close(ignored);
                     else
                       edge->shutdown(tcp::socket::shutdown_send, ignored);
                 });
  io.run_for(limit);
  return run;
}

TEST(UnreadMove, WhatEachSideHoldsArrivesOnceAndInOrderAndIsCounted) {
  asio::io_context io;
  Pair client(io), upstream(io);
  // Less than each edge socket takes before any read, so all of it waits unread.
  const std::string up = pattern(60000, 1), down = pattern(45000, 2);
  send_now(client.b, up);
  send_now(upstream.b, down);
  std::string backend_got, client_got;
  asio::co_spawn(io, read_all(upstream.b, backend_got), asio::detached);
  asio::co_spawn(io, read_all(client.b, client_got), asio::detached);
  Counters counters;
  auto run = run_move(io, client, upstream, counters, 1s);
  ASSERT_TRUE(run.moved) << "the move never ended";
  EXPECT_EQ(run.moved->end, Outcome::Drained) << run.moved->error.message();
  EXPECT_EQ(backend_got, up);
  EXPECT_EQ(client_got, down);
  EXPECT_EQ(counters.client_to_upstream, up.size());
  EXPECT_EQ(counters.upstream_to_client, down.size());
}

TEST(UnreadMove, NothingUnreadEndsAtOnce) {
  asio::io_context io;
  Pair client(io), upstream(io);
  Counters counters;
  auto run = run_move(io, client, upstream, counters, 1s);
  ASSERT_TRUE(run.moved);
  EXPECT_EQ(run.moved->end, Outcome::Drained);
  EXPECT_LT(run.took, 500ms);
}

// The backend has a lot queued and more to say; the client neither reads nor sends. The move
// held its buffer, and the connection, for good before the idle timeout covered it.
TEST(UnreadMove, AClientThatStopsReadingEndsTheMoveAtTheIdleTimeout) {
  asio::io_context io;
  Pair client(io, false, 0, 4096), upstream(io, false, 1 << 20);
  const std::string down = pattern(8 << 20, 3);
  asio::co_spawn(io, write_all(upstream.b, down), asio::detached);
  // The backend's bytes reach the edge before the move starts.
  io.run_for(100ms);
  ASSERT_GT(unread_bytes(upstream.a.native_handle()), 64u * 1024);
  Counters counters;
  auto run = run_move(io, client, upstream, counters, 300ms);
  ASSERT_TRUE(run.moved) << "the move never ended";
  EXPECT_EQ(run.moved->end, Outcome::IdleTimeout);
  EXPECT_GE(run.took, 300ms);
  EXPECT_LT(run.took, 3s);
  // What the client's socket took before it filled, and no more.
  EXPECT_GT(counters.upstream_to_client, 0u);
  EXPECT_LT(counters.upstream_to_client, down.size());
}

// The same stuck client, which still sends 1 KiB every 50 ms for 1.2 s: bytes moving either
// way are progress, so the move lasts until 300 ms after the last of them, and each arrives.
TEST(UnreadMove, BytesMovingTheOtherWayKeepTheMoveGoing) {
  asio::io_context io;
  Pair client(io, false, 0, 4096), upstream(io, false, 1 << 20);
  const std::string down = pattern(8 << 20, 4), up = pattern(24 * 1024, 5);
  asio::co_spawn(io, write_all(upstream.b, down), asio::detached);
  io.run_for(100ms);
  std::string backend_got;
  asio::co_spawn(io, read_all(upstream.b, backend_got), asio::detached);
  asio::co_spawn(io, write_slowly(client.b, up, 1024, 50ms), asio::detached);
  Counters counters;
  auto run = run_move(io, client, upstream, counters, 300ms);
  ASSERT_TRUE(run.moved) << "the move never ended";
  EXPECT_EQ(run.moved->end, Outcome::IdleTimeout);
  EXPECT_GE(run.took, 1400ms);  // the last KiB went at 1.15 s
  EXPECT_LT(run.took, 4s);
  EXPECT_EQ(backend_got, up);
  EXPECT_EQ(counters.client_to_upstream, up.size());
}

}  // namespace
}  // namespace snigate::relay::sockmap
