// The splice relay under a bound on its pipes ([daemon] max_pipes, relay/pipe_pool.h): a
// connection whose burst finds every pipe in use moves that burst by copy, never waits for
// a pipe and never fails, and the counter an operator sizes max_pipes by says so.
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <future>
#include <optional>
#include <string>
#include <thread>

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

using Pair = test::SocketPair;

// One relayed connection: the user's end writes `payload` (distinct bytes per connection),
// the backend's end reads what arrives.
struct Relayed {
  Relayed(asio::io_context& io, char seed, std::size_t size) : client(io), upstream(io) {
    payload.resize(size);
    std::uint32_t x = static_cast<unsigned char>(seed) * 2654435761u + 1;
    for (auto& c : payload) {
      x = x * 1664525u + 1013904223u;
      c = static_cast<char>(x >> 24);
    }
  }
  // Sends what the sockets take now; false once they take nothing.
  bool send_some() {
    if (sent == payload.size()) return false;
    ssize_t n = ::send(client.b.native_handle(), payload.data() + sent,
                       std::min<std::size_t>(payload.size() - sent, 16 * 1024),
                       MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
    return true;
  }
  // Reads what has arrived.
  void receive_some() {
    char buf[64 * 1024];
    for (ssize_t n; (n = ::recv(upstream.b.native_handle(), buf, sizeof buf, MSG_DONTWAIT)) > 0;)
      got.append(buf, static_cast<std::size_t>(n));
  }
  bool arrived() const { return got.size() == payload.size(); }

  Pair client;    // client.a: what the relay reads; client.b: the user's end
  Pair upstream;  // upstream.a: what the relay writes; upstream.b: the backend's end
  Counters counters;
  std::string payload;
  std::size_t sent = 0;
  std::string got;
};

// Sends all of `r`, running `io` (its relay) meanwhile: false unless every byte arrived
// unchanged within 10 s.
bool relay_all(asio::io_context& io, Relayed& r) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!r.arrived() && std::chrono::steady_clock::now() < until) {
    r.send_some();
    io.restart();
    io.run_one_for(1ms);
    io.poll();
    r.receive_some();
  }
  return r.arrived() && r.got == r.payload;
}

class SplicePipeBound : public ::testing::Test {
 protected:
  void TearDown() override { set_max_pipes(kUnboundedPipes); }
};

TEST_F(SplicePipeBound, ABurstWithNoPipeLeftGoesByCopyAndEveryByteArrives) {
  set_max_pipes(1);
  const std::uint64_t copied_before = pipe_figures().bursts_by_copy;
  asio::io_context io;
  Relayed first(io, 'a', 512 << 10);
  Relayed second(io, 'b', 1 << 20);
  // Small buffers (no autotuning) all along the first one's way, so a stalled backend soon
  // stalls its user too, with the relay holding bytes in its pipe.
  const int small = 16 * 1024;
  for (auto* s : {&first.client.a, &first.client.b, &first.upstream.a, &first.upstream.b}) {
    ::setsockopt(s->native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ::setsockopt(s->native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  }
  SpliceRelay relay;
  Options options;
  std::optional<Result> first_end, second_end;
  relay.start(first.client.a, first.upstream.a, options, first.counters,
              [&](Result r) { first_end = r; });
  relay.start(second.client.a, second.upstream.a, options, second.counters,
              [&](Result r) { second_end = r; });
  io.poll();

  // The first connection's backend reads nothing: once its user can send no more, the relay
  // holds bytes it cannot write, in the process's one pipe.
  int refused = 0;
  for (int i = 0; i < 100'000 && refused < 3; ++i) {
    refused = first.send_some() ? 0 : refused + 1;
    io.restart();
    io.poll();
  }
  ASSERT_EQ(refused, 3) << "the first connection never stalled";
  ASSERT_LT(first.sent, first.payload.size());
  EXPECT_EQ(pipe_figures().bursts_by_copy, copied_before) << "the first burst had the pipe";

  // Meanwhile the second one moves all it has, by copy.
  EXPECT_TRUE(relay_all(io, second)) << second.got.size() << " of " << second.payload.size();
  EXPECT_GT(pipe_figures().bursts_by_copy, copied_before) << "no burst went by copy";

  // The first backend reads at last: every byte, in order, through the pipe (with room again,
  // so as not to wait on TCP's zero-window probes).
  const int large = 1 << 20;
  for (auto* s : {&first.client.a, &first.client.b, &first.upstream.a, &first.upstream.b}) {
    ::setsockopt(s->native_handle(), SOL_SOCKET, SO_SNDBUF, &large, sizeof large);
    ::setsockopt(s->native_handle(), SOL_SOCKET, SO_RCVBUF, &large, sizeof large);
  }
  EXPECT_TRUE(relay_all(io, first)) << first.got.size() << " of " << first.payload.size();
  EXPECT_LE(pipe_figures().open, 1u) << "more pipes than max_pipes";
  EXPECT_EQ(first.counters.client_to_upstream, first.payload.size());
  EXPECT_EQ(second.counters.client_to_upstream, second.payload.size());
  EXPECT_FALSE(first_end || second_end) << "a connection ended early";

  for (auto* r : {&first, &second}) {
    r->client.a.close();  // ends the relay before its sockets go
    r->upstream.a.close();
  }
  io.restart();
  io.poll();
}

// Workers are threads with an io_context each. A pipe the first gave back when its
// connection went quiet must serve the second's burst, not sit idle beside it while that
// burst goes by copy.
TEST_F(SplicePipeBound, APipeOneWorkerGaveBackServesAnother) {
  set_max_pipes(1);
  const std::uint64_t copied_before = pipe_figures().bursts_by_copy;
  // A worker relays one connection's 256 KiB, says whether it all arrived, and keeps the
  // connection open, quiet, until `hold` is ready.
  auto worker = [](char seed, std::promise<bool>& moved, std::shared_future<void> hold) {
    asio::io_context io;
    Relayed r(io, seed, 256 << 10);
    SpliceRelay relay;
    Options options;
    relay.start(r.client.a, r.upstream.a, options, r.counters, [](Result) {});
    const bool all = relay_all(io, r);
    io.restart();
    io.run_for(20ms);  // to the relay's wait, its pipe given back
    moved.set_value(all);
    hold.wait();
    r.client.a.close();  // ends the relay before its sockets go
    r.upstream.a.close();
    io.restart();
    io.poll();
  };
  std::promise<void> done;
  std::shared_future<void> hold = done.get_future().share();
  std::promise<bool> first_moved, second_moved;
  std::thread first(worker, 'c', std::ref(first_moved), hold);
  EXPECT_TRUE(first_moved.get_future().get()) << "the first worker's bytes did not arrive";
  EXPECT_EQ(pipe_figures().bursts_by_copy, copied_before) << "the first worker had no pipe";
  EXPECT_EQ(pipe_figures().open, 1u) << "the first worker kept no pipe for reuse";

  std::thread second(worker, 'd', std::ref(second_moved), hold);
  EXPECT_TRUE(second_moved.get_future().get()) << "the second worker's bytes did not arrive";
  EXPECT_EQ(pipe_figures().bursts_by_copy, copied_before)
      << "the second worker copied while the first worker's pipe sat idle";
  EXPECT_LE(pipe_figures().open, 1u) << "more pipes than max_pipes";
  done.set_value();
  first.join();
  second.join();
}

}  // namespace
}  // namespace snigate::relay
