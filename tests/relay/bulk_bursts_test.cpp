// auto's userspace relay (SpliceRelay::Bursts::Bulk): each burst starts by copy and takes a
// pipe only once a read has filled the buffer while another burst of the thread's does too.
// Requests and answers never ask the pool for a pipe, nor does a stream one way alone; streams
// both ways at once move through pipes with every byte intact, and streams that find no pipe
// to have go on by copy, intact too.
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "relay/pipe_pool.h"
#include "relay/splice_relay.h"
#include "socket_pair.h"

namespace snigate::relay {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::string pattern(char seed, std::size_t size) {
  std::string s(size, '\0');
  std::uint32_t x = static_cast<unsigned char>(seed) * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

// One end of the relayed connection seen from outside: what it sends, what it got.
struct End {
  boost::asio::ip::tcp::socket& socket;
  std::string out;
  std::size_t sent = 0;
  std::string got;
  // As much as the socket takes now.
  void send_some() {
    while (sent < out.size()) {
      ssize_t n = ::send(socket.native_handle(), out.data() + sent, out.size() - sent,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }
  void receive_some() {
    char buf[64 * 1024];
    for (ssize_t n; (n = ::recv(socket.native_handle(), buf, sizeof buf, MSG_DONTWAIT)) > 0;)
      got.append(buf, static_cast<std::size_t>(n));
  }
};

class BulkBursts : public ::testing::Test {
 protected:
  void SetUp() override {
    // Room for more than a pump's rounds (flow.cpp) on each way, so that one direction
    // yields mid-burst and the two directions' bursts overlap, as under full-speed traffic.
    const int room = 4 << 20;
    for (auto* s : {&client.a, &client.b, &upstream.a, &upstream.b}) {
      ::setsockopt(s->native_handle(), SOL_SOCKET, SO_SNDBUF, &room, sizeof room);
      ::setsockopt(s->native_handle(), SOL_SOCKET, SO_RCVBUF, &room, sizeof room);
    }
    relay.start(client.a, upstream.a, options, counters, [&](Result r) { result = r; });
    io.poll();
  }
  void TearDown() override {
    set_max_pipes(kUnboundedPipes);
    client.a.close();  // ends the relay before its sockets go
    upstream.a.close();
    io.restart();
    io.poll();
  }
  // Both ends send theirs at once, the relay running meanwhile: true once each end has what
  // the other sent, unchanged, within 20 s.
  bool both_ways(const std::string& up, const std::string& down) {
    End user{client.b, up, 0, {}}, backend{upstream.b, down, 0, {}};
    const auto until = std::chrono::steady_clock::now() + 20s;
    while ((backend.got.size() < up.size() || user.got.size() < down.size()) &&
           std::chrono::steady_clock::now() < until) {
      user.send_some();
      backend.send_some();
      io.restart();
      io.run_one_for(1ms);
      io.poll();
      user.receive_some();
      backend.receive_some();
    }
    EXPECT_EQ(backend.got.size(), up.size());
    EXPECT_EQ(user.got.size(), down.size());
    return backend.got == up && user.got == down;
  }
  // Requests and answers of `size` bytes, one at a time.
  bool exchanges(int count, std::size_t size) {
    for (int i = 0; i < count; ++i)
      if (!both_ways(pattern(static_cast<char>(i), size), pattern(static_cast<char>(~i), size)))
        return false;
    return true;
  }

  asio::io_context io;
  test::SocketPair client{io, true};    // client.a: what the relay reads; .b: the user's end
  test::SocketPair upstream{io, true};  // upstream.a: what the relay writes; .b: the backend
  SpliceRelay relay{SpliceRelay::Bursts::Bulk};
  Options options;
  Counters counters;
  std::optional<Result> result;
};

TEST_F(BulkBursts, RequestsAndAnswersGoByCopyAndAskForNoPipe) {
  set_max_pipes(0);  // any burst that asked for a pipe would count as by copy
  const std::uint64_t before = pipe_figures().bursts_by_copy;
  EXPECT_TRUE(exchanges(20, 200));
  EXPECT_EQ(pipe_figures().bursts_by_copy, before) << "a small burst asked for a pipe";
  EXPECT_EQ(counters.mode, Mode::Copy);
  EXPECT_FALSE(result) << "the relay ended";
}

TEST_F(BulkBursts, AStreamOneWayAloneStaysOnCopy) {
  set_max_pipes(0);
  const std::uint64_t before = pipe_figures().bursts_by_copy;
  EXPECT_TRUE(both_ways(pattern('o', 8 << 20), ""));
  EXPECT_EQ(pipe_figures().bursts_by_copy, before) << "a lone stream asked for a pipe";
  EXPECT_EQ(counters.mode, Mode::Copy);
  EXPECT_EQ(counters.client_to_upstream, 8u << 20);
  EXPECT_FALSE(result) << "the relay ended";
}

TEST_F(BulkBursts, AStreamBothWaysMovesThroughPipesIntactAndRequestsAfterItCopyAgain) {
  const std::uint64_t before = pipe_figures().bursts_by_copy;
  EXPECT_TRUE(both_ways(pattern('u', 8 << 20), pattern('d', 8 << 20)));
  EXPECT_EQ(counters.mode, Mode::Splice) << "no burst went through a pipe";
  EXPECT_EQ(pipe_figures().bursts_by_copy, before) << "a burst found no pipe";
  EXPECT_EQ(counters.client_to_upstream, 8u << 20);
  EXPECT_EQ(counters.upstream_to_client, 8u << 20);

  // The stream has ended its bursts: each new one starts by copy again.
  set_max_pipes(0);
  EXPECT_TRUE(exchanges(10, 200));
  EXPECT_EQ(pipe_figures().bursts_by_copy, before) << "a small burst asked for a pipe";
  EXPECT_FALSE(result) << "the relay ended";
}

TEST_F(BulkBursts, AStreamThatFindsNoPipeGoesOnByCopyIntact) {
  set_max_pipes(0);
  const std::uint64_t before = pipe_figures().bursts_by_copy;
  EXPECT_TRUE(both_ways(pattern('x', 2 << 20), pattern('y', 2 << 20)));
  EXPECT_GT(pipe_figures().bursts_by_copy, before) << "no full burst asked for a pipe";
  EXPECT_EQ(counters.mode, Mode::Copy);
  EXPECT_FALSE(result) << "the relay ended";
}

}  // namespace
}  // namespace snigate::relay
