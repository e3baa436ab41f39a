#pragma once
// One quic listener's UDP socket on one worker, and the flows whose datagrams reach it.
// SO_REUSEPORT spreads clients across the workers' sockets by a hash of the addresses and
// ports, so each client address:port keeps reaching the same worker and its flow.
//
// A flow's life, in this file's order: the first datagram (a QUIC Initial, else ignored) is
// checked against the bans and the flow bound; datagrams are held while the Initials are read
// for the ClientHello; the name, ALPN and client address choose the route as on TCP; routed()
// opens the flow's upstream socket and sends what was held; then datagrams go both ways until
// the flow is idle. A flow that fails is logged once and lingers for preread_timeout as
// "dropped", swallowing the client's retransmissions without a line each.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>  // Boost 1.74 awaitable.hpp uses std::exchange without including it
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "conns/conn_registry.h"
#include "net/throttled_warning.h"
#include "quic/datagram_batch.h"
#include "quic/flow.h"

namespace snigate::quic {

// What every quic listener of the daemon shares with it; outlives them.
struct QuicHooks {
  // The current configuration as `listener` reads it; nullopt once a reload removed it.
  std::function<std::optional<FlowRoutes>(const std::string& listener)> routes;
  std::function<bool(const boost::asio::ip::address&)> banned;
  conns::ConnRegistry* registry = nullptr;
  // The kernel path routed flows are handed to; nullptr: userspace forwards them all.
  udp_flow::UdpFlowForwarder* kernel = nullptr;
};

// The flows of one listener across its workers, against max_flows.
struct FlowCount {
  std::atomic<std::size_t> live{0};
};

class QuicListener : public std::enable_shared_from_this<QuicListener> {
 public:
  using udp = boost::asio::ip::udp;

  // Binds now (errors at start-up or reload); throws boost::system::system_error naming the
  // address. `endpoint` is the configured address and port, as TCP listeners take it.
  QuicListener(boost::asio::io_context& io, std::string name,
               const boost::asio::ip::tcp::endpoint& endpoint, std::shared_ptr<FlowCount> count,
               QuicHooks& hooks);
  // Once per listener: its receive loop (and the flow sweep) begin on its worker's loop.
  void start();
  // Thread-safe: stops taking new flows and calls `closed` (if given) on the listener's loop;
  // routed flows go on until idle or ended through the registry (a drain), then the socket
  // closes.
  void stop(std::function<void()> closed = {});
  udp::endpoint local_endpoint() const { return socket_.local_endpoint(); }
  const boost::asio::ip::tcp::endpoint& configured() const { return configured_; }
  const std::string& name() const { return name_; }

 private:
  using FlowPtr = std::shared_ptr<Flow>;

  boost::asio::awaitable<void> receive();
  boost::asio::awaitable<void> receive_upstream(FlowPtr flow);
  void on_datagram(std::span<const std::uint8_t> datagram, const udp::endpoint& from);
  FlowPtr open_flow(std::span<const std::uint8_t> datagram, const udp::endpoint& from);
  void hello(const FlowPtr& flow, std::span<const std::uint8_t> datagram);
  // Routes the flow on its ClientHello's name (and ALPN, client address).
  void route(const FlowPtr& flow, const std::string& name);
  // `source`: the server's source=ADDR, whose family the address used must have.
  void resolve(const FlowPtr& flow, const std::string& host, std::uint16_t port,
               const std::optional<boost::asio::ip::address>& source);
  // Where a flow becomes routed, the one place: the upstream socket is opened and connected,
  // the held datagrams go out, the kernel path takes the flow over where it can, the backend's
  // replies are awaited (userspace forwards whatever still reaches its sockets).
  void routed(const FlowPtr& flow, const udp::endpoint& backend,
              const std::optional<boost::asio::ip::address>& source);
  // Hands a routed flow to the kernel path, if there is one and it takes it.
  void to_kernel(Flow& flow);
  // Reads what the kernel path moved for the flow into its counters and last_active.
  void sync_kernel(Flow& flow);
  void to_backend(Flow& flow, std::span<const std::uint8_t> datagram);
  void to_client(Flow& flow, std::span<const std::uint8_t> datagram);
  // Ends a flow: one access-log line, out of the registry, sockets closed; it lingers as
  // Dropped unless it `forget`s at once.
  void end(Flow& flow, FlowEnd how, const std::string& detail = {});
  void forget(const udp::endpoint& client);
  void kill(const udp::endpoint& client, std::uint64_t id, conns::KillReason reason);
  void arm_sweep();
  void sweep();
  void close_when_idle();

  udp::socket socket_;
  boost::asio::ip::tcp::endpoint configured_;
  std::string name_;
  std::shared_ptr<FlowCount> count_;
  QuicHooks& hooks_;
  bool accepting_ = true;
  std::map<udp::endpoint, FlowPtr> flows_;
  DatagramBatch batch_;  // every receive of this listener's loop, its flows' sockets included
  boost::asio::steady_timer sweep_timer_;
  net::ThrottledWarning at_capacity_;
  net::ThrottledWarning kernel_refused_;
};

}  // namespace snigate::quic
