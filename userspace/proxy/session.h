#pragma once
// One client connection, start to end: as one coroutine, limits and bans, optional PROXY
// header in, preread (ClientHello or HTTP head), route, connect upstream, PROXY header out
// plus the preread bytes in one write; then the relay, whose callback writes the one access
// log line (the coroutine ends at the hand-off, so an idle connection keeps no frame).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>  // Boost 1.74 awaitable.hpp uses std::exchange without including it
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <spdlog/logger.h>

#include "bans/ban_check.h"
#include "conns/client_limits.h"
#include "conns/conn_registry.h"
#include "forward/forwarder.h"
#include "proxy/access_log.h"
#include "proxy/generation.h"
#include "proxy/listener.h"
#include "net/deadline.h"
#include "net/throttled_warning.h"
#include "proxy/stats.h"

namespace snigate::proxy {

// What every session shares with the daemon; outlives all sessions.
struct SessionContext {
  conns::ConnRegistry& registry;
  Stats& stats;
  AccessLog& access_log;
  std::atomic<const bans::BanCheck*>& ban_check;
  conns::ClientLimits& client_limits;
  net::ThrottledWarning& at_capacity;  // max_connections refusals, one line per interval
  net::ThrottledWarning& no_local_port;  // connects that found no free local port, likewise
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  using tcp = boost::asio::ip::tcp;

  Session(Accepted accepted, std::shared_ptr<const Generation> generation,
          const ListenerSettings& listener, SessionContext& context);
  // Spawns the session's coroutine on the client socket's executor.
  void start();

 private:
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<EndReason> steps();
  boost::asio::awaitable<EndReason> read_proxy_header();
  boost::asio::awaitable<EndReason> preread();
  boost::asio::awaitable<EndReason> connect_and_relay(const std::string& backend);
  // A forward connection's destination (CONNECT's request, SNI forwarding's name and port),
  // listed from the moment it is known while the allow-list, DNS and connect decide.
  void show_destination(const std::string& host, std::uint16_t port);
  // The one forward path, for CONNECT and SNI forwarding: awaits `open` (the forwarder's
  // allow-list, DNS, address policy, connect), shows its verdict, then sends the first bytes and relays.
  boost::asio::awaitable<EndReason> forward_and_relay(
      boost::asio::awaitable<forward::ForwardResult> open, config::ProxyProtocol proxy_protocol);
  // The PROXY header (if any) and the preread bytes: what the upstream gets first, in one
  // write, so the backend sees them in one segment where it fits (some servers read the
  // header with a single recv).
  std::vector<std::uint8_t> first_bytes(config::ProxyProtocol proxy_protocol) const;
  // Sends what is left of `out` (its first `sent` bytes went with the connect), then hands
  // both sockets to the relay, whose callback ends the session.
  boost::asio::awaitable<EndReason> send_and_relay(tcp::socket upstream,
                                                   const tcp::endpoint& remote,
                                                   std::vector<std::uint8_t> out,
                                                   std::size_t sent);
  // Appends what the client sent next to pre_->buffer; false on error, EOF or deadline.
  boost::asio::awaitable<bool> read_more(std::size_t max_total);
  bool banned(const boost::asio::ip::address& address) const;
  // Takes a place under the client's caps (max_*_per_client); false, with the detail set,
  // when the client is at one.
  bool admit(const boost::asio::ip::address& client);
  // From the accept, preread_timeout; armed at the first read that has to wait.
  void arm_deadline();
  void disarm_deadline();
  // From any thread: closes the sockets on the session's own loop; the access log says why.
  void kill(conns::KillReason reason);
  // Closes both sockets, leaves the registry and the client's caps, writes the log line.
  void finish(EndReason end);
  // The access log's line: the registry's record of the connection (`info`) and how it went.
  void log_end(EndReason end, const conns::ConnInfo& info);

  tcp::socket client_;
  std::optional<tcp::socket> upstream_;
  std::shared_ptr<const Generation> generation_;
  const ListenerSettings& listener_;
  const BackendSettings* backend_ = nullptr;  // once routed to a defined backend
  bool relayed_ = false;  // the relay ran: the connection counts under its relay mode
  bool handed_over_ = false;  // the relay's callback ends the session, not run()
  SessionContext& context_;
  std::optional<EndReason> killed_;  // set by kill(): banned or drain_timeout
  std::optional<conns::ClientLimits::Ticket> ticket_;  // this connection's place per client

  std::uint64_t id_ = 0;
  std::chrono::steady_clock::time_point started_;
  // What only the steps before the hand-off use, freed there: an idle relayed connection
  // keeps none of it.
  struct PreRelay {
    explicit PreRelay(const boost::asio::any_io_executor& ex) : deadline(ex) {}
    net::Deadline deadline;  // the preread timeout
    tcp::endpoint peer, local;
    bool local_known = false;          // from the listener's address, without getsockname
    tcp::endpoint client;              // real client
    tcp::endpoint destination;         // what the client connected to (from PROXY if any)
    std::vector<std::uint8_t> buffer;  // bytes read from the client, replayed upstream
    std::vector<std::string> alpn;     // offered ALPN protocols, for the route
    std::string name;                  // SNI or Host, for the route and the PROXY header
  };
  std::unique_ptr<PreRelay> pre_;
  relay::Counters counters_;
  // One record per connection: what `snigatectl conns` lists (name, backend, upstream...) is
  // in the registry, which hands it back for the log line; the session keeps only what the
  // log adds to it.
  std::string detail_;       // why, for errors
  double connect_ms_ = -1;   // -1: never connected
};

}  // namespace snigate::proxy
