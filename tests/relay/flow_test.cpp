// The userspace relays' event loop on loopback, no privileges: a FIN that comes with the last
// bytes still ends the direction. A read that returns those bytes consumes the FIN's wake-up
// too (one epoll edge for both), so a relay that took a short read as "empty" and waited
// without re-arming epoll would never see the end of the stream (net/ready_wait.h).
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "relay/copy_relay.h"
#include "relay/splice_relay.h"

namespace snigate::relay {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Two connected loopback sockets on `io`.
struct Pair {
  explicit Pair(asio::io_context& io) : a(io), b(io) {
    tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
    b.connect(acceptor.local_endpoint());
    acceptor.accept(a);
    a.non_blocking(true);
    b.non_blocking(true);
  }
  tcp::socket a;
  tcp::socket b;
};

std::unique_ptr<Relay> make(Mode mode) {
  if (mode == Mode::Copy) return std::make_unique<CopyRelay>();
  return std::make_unique<SpliceRelay>();
}

class RelayFlow : public ::testing::TestWithParam<Mode> {};

TEST_P(RelayFlow, BytesAndFinSentTogetherArriveWithTheEnd) {
  asio::io_context io;
  Pair client(io);    // client.a: what the relay reads; client.b: the user's end
  Pair upstream(io);  // upstream.a: what the relay writes; upstream.b: the backend's end
  auto relay = make(GetParam());
  Options options;
  Counters counters;
  std::optional<Result> result;
  relay->start(client.a, upstream.a, options, counters, [&](Result r) { result = r; });
  io.poll();  // each direction finds nothing and waits

  const std::string hello = "hello, then the end";
  ASSERT_EQ(::send(client.b.native_handle(), hello.data(), hello.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(hello.size()));
  ASSERT_EQ(::shutdown(client.b.native_handle(), SHUT_WR), 0);

  // The backend reads until the end of the stream, 5 s at most.
  std::string got;
  bool ended = false;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!ended && std::chrono::steady_clock::now() < until) {
    io.restart();
    io.run_one_for(10ms);
    char buf[256];
    ssize_t n = ::recv(upstream.b.native_handle(), buf, sizeof buf, 0);
    if (n > 0) got.append(buf, static_cast<std::size_t>(n));
    ended = n == 0;
  }
  EXPECT_EQ(got, hello);
  EXPECT_TRUE(ended) << "the client's FIN never reached the backend";

  // The backend ends its side too: the relay ends cleanly.
  ASSERT_EQ(::shutdown(upstream.b.native_handle(), SHUT_WR), 0);
  const auto done_by = std::chrono::steady_clock::now() + 5s;
  while (!result && std::chrono::steady_clock::now() < done_by) {
    io.restart();
    io.run_one_for(10ms);
  }
  ASSERT_TRUE(result);
  EXPECT_EQ(result->end, End::Clean);
}

// What both sides sent before the relay started is relayed without waiting for more.
TEST_P(RelayFlow, BytesWaitingAtTheStartAreRelayed) {
  asio::io_context io;
  Pair client(io);
  Pair upstream(io);
  const std::string request = "sent before the start", answer = "answered before it";
  ASSERT_EQ(::send(client.b.native_handle(), request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  ASSERT_EQ(::send(upstream.b.native_handle(), answer.data(), answer.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(answer.size()));
  auto relay = make(GetParam());
  Options options;
  Counters counters;
  relay->start(client.a, upstream.a, options, counters, [](Result) {});
  std::string at_backend, at_client;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while ((at_backend.size() < request.size() || at_client.size() < answer.size()) &&
         std::chrono::steady_clock::now() < until) {
    io.restart();
    io.run_one_for(10ms);
    char buf[256];
    for (auto [fd, got] : {std::pair{upstream.b.native_handle(), &at_backend},
                           std::pair{client.b.native_handle(), &at_client}}) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) got->append(buf, static_cast<std::size_t>(n));
    }
  }
  EXPECT_EQ(at_backend, request);
  EXPECT_EQ(at_client, answer);
  client.a.close();  // ends the relay before its sockets go
  upstream.a.close();
  io.restart();
  io.poll();
}

INSTANTIATE_TEST_SUITE_P(Modes, RelayFlow, ::testing::Values(Mode::Copy, Mode::Splice),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace snigate::relay
