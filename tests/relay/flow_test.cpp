// The userspace relays' event loop on loopback, no privileges: a FIN or reset that comes with
// the last bytes still ends the direction. A read that returns those bytes consumes the FIN's
// wake-up too (one epoll edge for both), so a relay that took a short read as "empty" and
// waited without re-arming epoll would never see the end of the stream (net/ready_wait.h).
// Each case runs on sockets with TCP_INQ (the daemon's: the read's hint says whether a FIN is
// left, not whether a reset is) and without (a relay handed sockets from elsewhere).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "relay/copy_relay.h"
#include "relay/splice_relay.h"
#include "socket_pair.h"

namespace snigate::relay {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct Case {
  Mode mode;
  bool tcp_inq;
  bool bulk_only = false;  // SpliceRelay::Bursts::Bulk, auto's userspace relay
};

using Pair = test::SocketPair;

std::unique_ptr<Relay> make(const Case& c) {
  if (c.mode == Mode::Copy) return std::make_unique<CopyRelay>();
  return std::make_unique<SpliceRelay>(c.bulk_only ? SpliceRelay::Bursts::Bulk
                                                   : SpliceRelay::Bursts::All);
}

class RelayFlow : public ::testing::TestWithParam<Case> {
 protected:
  asio::io_context io;
  Pair client{io, GetParam().tcp_inq};    // client.a: what the relay reads; .b: the user's end
  Pair upstream{io, GetParam().tcp_inq};  // upstream.a: what the relay writes; .b: the backend
};

TEST_P(RelayFlow, BytesAndFinSentTogetherArriveWithTheEnd) {
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

// A reset that came with the last bytes: the read that returns them hints that nothing is
// left (a reset is no byte and no FIN), so only epoll's report of the reset, seen before that
// read, says to read again. The bytes reach the backend and the relay ends, reset.
TEST_P(RelayFlow, BytesAndResetSentTogetherArriveAndEndTheRelay) {
  auto relay = make(GetParam());
  Options options;
  Counters counters;
  std::optional<Result> result;
  relay->start(client.a, upstream.a, options, counters, [&](Result r) { result = r; });
  io.poll();  // each direction finds nothing and waits

  const std::string last = "last words";
  ASSERT_EQ(::send(client.b.native_handle(), last.data(), last.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(last.size()));
  const linger reset{1, 0};  // close() sends RST (tcp(7))
  ASSERT_EQ(::setsockopt(client.b.native_handle(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
  client.b.close();  // both are in before the relay's next epoll_wait (loopback)

  std::string got;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!result && std::chrono::steady_clock::now() < until) {
    io.restart();
    io.run_one_for(10ms);
  }
  char buf[256];
  for (ssize_t n; (n = ::recv(upstream.b.native_handle(), buf, sizeof buf, 0)) > 0;)
    got.append(buf, static_cast<std::size_t>(n));
  EXPECT_EQ(got, last);
  ASSERT_TRUE(result) << "the client's reset never ended the relay";
  EXPECT_EQ(result->end, End::ClientReset);
}

INSTANTIATE_TEST_SUITE_P(Modes, RelayFlow,
                         ::testing::Values(Case{Mode::Copy, true}, Case{Mode::Copy, false},
                                           Case{Mode::Splice, true}, Case{Mode::Splice, false},
                                           Case{Mode::Splice, true, true},
                                           Case{Mode::Splice, false, true}),
                         [](const auto& info) {
                           return std::string(to_string(info.param.mode)) +
                                  (info.param.bulk_only ? "Bulk" : "") +
                                  (info.param.tcp_inq ? "WithTcpInq" : "");
                         });

}  // namespace
}  // namespace snigate::relay
