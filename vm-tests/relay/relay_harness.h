#pragma once
// Relay-level vm-test harness: a client, an edge and a backend in their own network
// namespaces. The edge accepts, connects to the backend and runs the Relay under test between
// the two sockets, as the daemon's session does after its preread. Client and backend are
// real TCP peers that send deterministic byte streams and check every byte they receive.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "netns.h"
#include "relay/relay.h"

namespace snigate::vmtest {

using boost::asio::ip::tcp;

// What one connection does. Every stream is a pure function of (id, direction), so each
// receiver checks each byte and the exact length.
struct Plan {
  std::uint64_t c2u = 0;  // payload bytes client -> backend (after the 8-byte id)
  std::uint64_t u2c = 0;  // payload bytes backend -> client
  bool v6 = false;
  // Hold: neither FIN nor RST; the side stays silent until the edge closes.
  enum class End { Fin, Reset, Hold } client_end = End::Fin, backend_end = End::Fin;
  // Half-close order: this side sends only once it has read the other side's EOF.
  bool client_waits_for_eof = false;
  bool backend_waits_for_eof = false;
  std::uint64_t client_read_rate = 0;  // bytes/s, 0 = as fast as it can
  bool backend_reads = true;           // false: reads the id, then nothing
  std::uint64_t backend_read_delay_ms = 0;  // reads nothing for this long after the id
  bool client_fin_after_eof = false;   // client keeps its side open until the backend's EOF
  // Backend writes this many bytes right after accept, before the relay has started.
  std::uint64_t backend_greeting = 0;
  // Backend writes back each chunk it reads before reading on (u2c must equal c2u): the echo
  // server of issue 12's report, which couples the two directions through its one loop.
  bool backend_echoes = false;
  // With backend_echoes: the client sends c2u in messages of this size, each once the echo of
  // the one before is back (request and response), then its FIN. 0: as one stream.
  std::uint64_t client_message = 0;
};

// An upload of `bytes` to a backend that reads only the id. The backend holds its side open:
// its FIN, if it beat the handoff, would leave the edge's upstream socket half-closed, which a
// sockhash refuses, and the connection would run on the fallback relay instead.
inline Plan stalled_upload(std::uint64_t bytes) {
  return {.c2u = bytes, .u2c = 0, .backend_end = Plan::End::Hold, .backend_reads = false};
}

struct Outcome {
  bool client_done = false, backend_done = false;
  std::uint64_t client_received = 0, backend_received = 0;
  bool client_intact = true, backend_intact = true;  // every byte as sent, in order
  std::uint64_t client_first_bad = UINT64_MAX, backend_first_bad = UINT64_MAX;  // offsets
  bool client_eof = false, backend_eof = false;      // clean EOF after the bytes
  boost::system::error_code client_error, backend_error;  // reading
  boost::system::error_code client_send_error, backend_send_error;
  std::uint64_t client_sent = 0, backend_sent = 0;  // bytes the socket accepted
};

struct EdgeRecord {
  relay::Result result;
  std::uint64_t c2u = 0, u2c = 0;
  relay::Mode mode = relay::Mode::Auto;  // the relay that moved the bytes (Counters::mode)
};

// How the three hosts are joined: veth between namespaces, or all in the edge namespace over
// its loopback (127.0.0.1, ::1), where TCP runs with 64 KiB segments and no NIC queues.
enum class Link { Veth, Loopback };

class Harness {
 public:
  // `relay` runs in the edge namespace. Without one the edge is an outside process (snigated):
  // point the clients at it with set_external_edge. Throws when namespaces cannot be made.
  Harness(std::shared_ptr<relay::Relay> relay, relay::Options options = {},
          Link link = Link::Veth);
  ~Harness();

  // Runs the plans, at most `concurrency` at a time, until every client and backend is done
  // and the edge has recorded a relay result per connection, or `limit` passes (then
  // timed_out() is true). Outcomes are indexed like the plans.
  std::vector<Outcome> run(const std::vector<Plan>& plans, std::size_t concurrency,
                           std::chrono::seconds limit);
  bool timed_out() const { return timed_out_; }
  // The edge waits this long between connecting upstream and starting the relay, so bytes
  // queue on both sockets before the handoff.
  void set_handoff_delay(std::chrono::milliseconds delay);
  // Where the clients connect when the edge is an outside process, and what every client
  // sends before its id (a request head for the daemon to route by; the backend checks it).
  void set_external_edge(const tcp::endpoint& v4, const tcp::endpoint& v6,
                         std::string preamble);
  tcp::endpoint backend(bool v6) const;

  // Relay results recorded by the edge so far, in completion order.
  std::vector<EdgeRecord> edge_records();
  // Closes every socket the edge is relaying, as a ban or a daemon stop does.
  void abort_live();
  std::size_t live_connections();

  const Topology& topology() const { return topology_; }

  struct State;  // shared with the peers' and the edge's coroutines

 private:
  // The edge's live connections, a line each (relay, bytes each way), for report_timeout;
  // also prints each namespace's TCP sockets (ss) while the timed-out run's are still open.
  std::vector<std::string> describe_live();
  void report_timeout(const std::vector<Outcome>& out, std::size_t started,
                      const std::vector<std::string>& live);
  Topology topology_;
  std::shared_ptr<State> state_;
  boost::asio::io_context edge_io_;
  boost::asio::io_context peers_io_;
  std::thread edge_thread_, peers_thread_;
  bool timed_out_ = false;
};

// Open file descriptors of this process: the pipes (the splice relay's pool keeps empty ones
// for reuse, relay/pipe_pool.h), or all the others.
std::size_t open_fds(bool pipes = false);

}  // namespace snigate::vmtest
