#pragma once
// One QUIC flow: the datagrams of one client address:port on a quic listener, from its first
// Initial to its end. Until its route is known its datagrams are held and its Initials read
// for the ClientHello; once routed, a connected UDP socket of its own carries them to the
// backend, and what the backend sends back leaves from the listener's socket.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/udp.hpp>

#include "config/config.h"
#include "conns/conn_registry.h"
#include "parser/quic_initial.h"
#include "routing/route_table.h"
#include "udp_flow/udp_flow_forwarder.h"

namespace snigate::quic {

// How a flow ended, for its access-log line (the daemon maps it onto its end reasons).
enum class FlowEnd {
  Idle,          // no datagram either way for flow_idle_timeout
  HelloTimeout,  // no complete ClientHello within preread_timeout
  NoRoute,       // the table has nothing for this name (and no default)
  ParseError,    // Initial packets unreadable, or the hello beyond preread_max/_datagrams
  Banned,        // the client is banned (at the first datagram, or later through a new ban)
  Refused,       // no server of the backend reachable: none up, a name that does not resolve,
                 // the backend's port unreachable (ICMP)
  Drain,         // still live when a stop's drain_timeout ran out
  Error,
};

// How a flow ended: what its access-log line adds to its record, the registry's ConnInfo
// (taken when it ends, its datagram figures joined).
struct FlowEnding {
  FlowEnd end = FlowEnd::Error;
  std::string detail;
  double route_ms = -1;  // first datagram to routed; -1: never
  double duration_ms = 0;
};

// The configuration generation a new flow reads, as the daemon hands it over; the flow keeps
// it (through `owner`) for its life, as a TCP connection keeps its generation.
struct FlowRoutes {
  std::shared_ptr<const void> owner;  // keeps what the pointers below point into
  const config::ListenerConfig* listener = nullptr;
  const routing::RouteTable* table = nullptr;
  // The server of `backend` a routed flow goes to (the backend's pool: weights, backups and
  // marks as on TCP); nullptr, with why, when there is none.
  std::function<const config::ServerConfig*(const std::string& backend, std::string* why)> pick;
  std::function<void()> opened;                    // a flow started (the listener's counters)
  std::function<void()> refused;                   // a new flow refused at max_flows
  // One access-log line, the stats.
  std::function<void(const conns::ConnInfo&, const FlowEnding&)> ended;
};

struct Flow {
  enum class State {
    Hello,       // holding datagrams, reading Initials
    Resolving,   // routed to a server named by host name, waiting for DNS
    Forwarding,  // routed: datagrams go both ways
    Dropped,     // ended and logged; kept a while to swallow the client's retransmissions
  };
  using Clock = std::chrono::steady_clock;

  Flow(const boost::asio::ip::udp::endpoint& c, std::shared_ptr<const FlowRoutes> r)
      : client(c),
        routes(std::move(r)),
        // The reader gives up where the held datagrams would: same counts, same bytes.
        reader({routes->listener->quic.preread_datagrams, routes->listener->preread_max}) {}

  State state = State::Hello;
  boost::asio::ip::udp::endpoint client;
  std::shared_ptr<const FlowRoutes> routes;
  // In the ConnRegistry while not Dropped: its record (name, backend, upstream...) is there.
  std::uint64_t id = 0;
  parser::quic::InitialReader reader;
  std::vector<std::vector<std::uint8_t>> held;  // in arrival order, sent once routed
  std::size_t held_bytes = 0;
  std::vector<std::string> alpn;
  std::optional<boost::asio::ip::udp::socket> upstream;  // connected to the backend
  boost::asio::ip::udp::endpoint backend;
  std::shared_ptr<relay::Counters> counters = std::make_shared<relay::Counters>();  // bytes
  // Datagrams each way through snigated's sockets (client -> backend: held ones included).
  std::uint64_t packets_in = 0, packets_out = 0;
  // Set while the kernel path forwards the flow; `moved`: its counters as last read.
  std::optional<udp_flow::UdpFlowSpec> kernel;
  udp_flow::FlowCounters moved;
  double route_ms = -1;  // first datagram to routed; -1: never
  Clock::time_point started = Clock::now();
  Clock::time_point last_active = started;
  Clock::time_point linger_until{};  // Dropped: forgotten then
};

}  // namespace snigate::quic
