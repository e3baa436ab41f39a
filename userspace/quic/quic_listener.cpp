#include "quic/quic_listener.h"

#include <sys/socket.h>
#include <time.h>

#include <cstring>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "net/prefix.h"

namespace snigate::quic {

namespace asio = boost::asio;
using boost::system::error_code;
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
using Clock = Flow::Clock;

namespace {

// RFC 9000 14.1: a client's datagram carrying its first Initial is at least 1200 bytes, so a
// smaller one opens no flow (and an amplification attacker gets nothing for less).
constexpr std::size_t kMinInitialDatagram = 1200;
// How often timeouts are checked: hello and idle timeouts end within this much of their time.
constexpr auto kSweepInterval = std::chrono::milliseconds(200);
// Datagrams read per wake-up of a socket, so one busy flow cannot hold the loop.
constexpr int kBatchesPerWake = 8;

std::string str(const asio::ip::udp::endpoint& ep) {
  auto a = net::unmap(ep.address());
  return a.is_v6() ? fmt::format("[{}]:{}", a.to_string(), ep.port())
                   : fmt::format("{}:{}", a.to_string(), ep.port());
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

sockaddr_storage sockaddr_of(const asio::ip::udp::endpoint& ep) {
  sockaddr_storage ss{};
  std::memcpy(&ss, ep.data(), ep.size());
  return ss;
}

// The clock of the kernel path's last_seen_ns (bpf_ktime_get_boot_ns).
std::uint64_t boottime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace

QuicListener::QuicListener(asio::io_context& io, std::string name,
                           const asio::ip::tcp::endpoint& endpoint,
                           std::shared_ptr<FlowCount> count, QuicHooks& hooks)
    : socket_(io),
      configured_(endpoint),
      name_(std::move(name)),
      count_(std::move(count)),
      hooks_(hooks),
      sweep_timer_(io) {
  const udp::endpoint ep(endpoint.address(), endpoint.port());
  try {
    socket_.open(ep.protocol());
    socket_.set_option(udp::socket::reuse_address(true));
    socket_.set_option(reuse_port(true));
    if (ep.address().is_v6()) socket_.set_option(asio::ip::v6_only(false));
    socket_.bind(ep);
    socket_.non_blocking(true);
  } catch (const boost::system::system_error& e) {
    throw boost::system::system_error(
        e.code(), "listener " + name_ + ": cannot bind UDP (is the address local and the port "
                  "free? ports below 1024 need CAP_NET_BIND_SERVICE)");
  }
}

void QuicListener::start() {
  asio::co_spawn(socket_.get_executor(), [self = shared_from_this()] { return self->receive(); },
                 asio::detached);
}

void QuicListener::stop(std::function<void()> closed) {
  asio::post(socket_.get_executor(), [self = shared_from_this(), closed = std::move(closed)] {
    self->accepting_ = false;
    if (closed) closed();
    self->close_when_idle();
  });
}

void QuicListener::close_when_idle() {
  if (accepting_ || !flows_.empty()) return;
  error_code ignored;
  socket_.close(ignored);
  sweep_timer_.cancel();
}

asio::awaitable<void> QuicListener::receive() {
  arm_sweep();  // here, on the worker's thread, which alone uses the timer from now on
  for (;;) {
    error_code ec;
    co_await socket_.async_wait(udp::socket::wait_read, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !socket_.is_open()) co_return;
    for (int round = 0; round < kBatchesPerWake; ++round) {
      std::error_code error;
      const std::size_t n = batch_.receive(socket_.native_handle(), error);
      for (std::size_t i = 0; i < n; ++i)
        if (!batch_.truncated(i)) on_datagram(batch_.datagram(i), batch_.source(i));
      if (n < DatagramBatch::kSize) break;
    }
  }
}

void QuicListener::on_datagram(std::span<const std::uint8_t> datagram, const udp::endpoint& from) {
  auto it = flows_.find(from);
  FlowPtr flow = it != flows_.end() ? it->second : open_flow(datagram, from);
  if (!flow || flow->state == Flow::State::Dropped) return;
  Flow& f = *flow;
  ++f.packets_in;
  f.counters->client_to_upstream += datagram.size();
  f.last_active = Clock::now();
  if (it == flows_.end() && hooks_.banned(net::unmap(from.address())))
    return end(f, FlowEnd::Banned);
  if (f.state == Flow::State::Forwarding)
    to_backend(f, datagram);
  else
    hello(flow, datagram);
}

QuicListener::FlowPtr QuicListener::open_flow(std::span<const std::uint8_t> datagram,
                                              const udp::endpoint& from) {
  // Only a client's first flight opens a flow: anything else from an unknown address (what
  // a flow forgotten when idle still sends, stray or forged traffic) cannot be routed.
  auto header = parser::quic::peek_long_header(datagram);
  if (!accepting_ || !header || !header->initial || datagram.size() < kMinInitialDatagram)
    return nullptr;
  auto routes = hooks_.routes(name_);
  if (!routes) return nullptr;  // removed by a reload a moment ago
  // At the bound new flows are refused and live ones kept: a flood of fresh Initials must not
  // push routed flows out. Unrouted ones give way within preread_timeout.
  const std::size_t max = routes->listener->quic.max_flows;
  if (count_->live.load() >= max) {
    if (routes->refused) routes->refused();
    if (auto n = at_capacity_.due())
      spdlog::warn("listener {}: max_flows ({}) reached: refused {} new flow(s) since the last "
                   "such line; raise max_flows or lower flow_idle_timeout",
                   name_, max, *n);
    return nullptr;
  }
  auto flow = std::make_shared<Flow>(from, std::make_shared<const FlowRoutes>(std::move(*routes)));
  flow->id = hooks_.registry->next_id();
  conns::ConnInfo info;
  info.id = flow->id;
  info.listener = name_;
  info.protocol = "quic";
  info.peer = {from.address(), from.port()};
  info.client = net::unmap(from.address());
  info.client_port = from.port();
  info.state = "hello";
  info.started = std::chrono::system_clock::now();
  info.counters = flow->counters;
  hooks_.registry->add(std::move(info),
                       [weak = weak_from_this(), from, id = flow->id](conns::KillReason r) {
                         if (auto self = weak.lock())
                           asio::post(self->socket_.get_executor(),
                                      [self, from, id, r] { self->kill(from, id, r); });
                       });
  flows_.emplace(from, flow);
  ++count_->live;
  if (flow->routes->opened) flow->routes->opened();
  return flow;
}

void QuicListener::hello(const FlowPtr& flow, std::span<const std::uint8_t> datagram) {
  Flow& f = *flow;
  const config::ListenerConfig& l = *f.routes->listener;
  f.held.emplace_back(datagram.begin(), datagram.end());
  f.held_bytes += datagram.size();
  if (f.held.size() > l.quic.preread_datagrams || f.held_bytes > l.preread_max)
    return end(f, FlowEnd::ParseError,
               fmt::format("no route after {} datagrams, {} bytes (preread_datagrams {}, "
                           "preread_max {})",
                           f.held.size(), f.held_bytes, l.quic.preread_datagrams, l.preread_max));
  if (f.state != Flow::State::Hello) return;
  // 0-RTT and Handshake packets may follow the Initials before the route is known: held for
  // the backend, not read.
  auto header = parser::quic::peek_long_header(datagram);
  if (!header || !header->initial) return;
  parser::quic::QuicPreread p = f.reader.feed(datagram);
  if (p.status == parser::Status::NeedMore) return;
  if (p.status == parser::Status::Error)
    return end(f, FlowEnd::ParseError,
               std::string(parser::quic::to_string(p.error)) +
                   (p.detail.empty() ? "" : ": " + p.detail));
  hooks_.registry->update(f.id, [&](conns::ConnInfo& i) {
    i.server_name = p.hello.sni;
    i.alpn = conns::alpn_list(p.hello.alpn);
  });
  f.alpn = std::move(p.hello.alpn);
  route(flow, p.hello.sni);
}

void QuicListener::route(const FlowPtr& flow, const std::string& name) {
  Flow& f = *flow;
  const FlowRoutes& r = *f.routes;
  const routing::RouteMatch m = r.table->route({name, &f.alpn, net::unmap(f.client.address())});
  if (!m.backend) return end(f, FlowEnd::NoRoute, "no route for this name and no default");
  hooks_.registry->update(f.id, [&](conns::ConnInfo& i) {
    i.backend = *m.backend;
    i.rule = *m.rule;
  });
  std::string why;
  const config::ServerConfig* server = r.pick(*m.backend, &why);
  if (!server) return end(f, FlowEnd::Refused, why);
  error_code ec;
  const auto address = asio::ip::make_address(server->host, ec);
  if (ec) return resolve(flow, server->host, server->port, server->source);
  routed(flow, udp::endpoint(address, server->port), server->source);
}

void QuicListener::resolve(const FlowPtr& flow, const std::string& host, std::uint16_t port,
                           const std::optional<asio::ip::address>& source) {
  flow->state = Flow::State::Resolving;
  auto resolver = std::make_shared<udp::resolver>(socket_.get_executor());
  resolver->async_resolve(
      host, std::to_string(port),
      [self = shared_from_this(), flow, resolver, host, source](
          const error_code& ec, udp::resolver::results_type results) {
        if (flow->state != Flow::State::Resolving) return;  // ended meanwhile
        if (ec || results.empty())
          return self->end(*flow, FlowEnd::Refused, "resolving " + host + ": " + ec.message());
        for (const auto& r : results)
          if (!source || r.endpoint().address().is_v4() == source->is_v4())
            return self->routed(flow, r.endpoint(), source);
        self->end(*flow, FlowEnd::Refused,
                  "resolving " + host + ": no address of source " + source->to_string() +
                      "'s family");
      });
}

void QuicListener::routed(const FlowPtr& flow, const udp::endpoint& backend,
                          const std::optional<asio::ip::address>& source) {
  Flow& f = *flow;
  udp::socket upstream(socket_.get_executor());
  error_code ec;
  upstream.open(backend.protocol(), ec);
  if (!ec && source) upstream.bind(udp::endpoint(*source, 0), ec);
  if (!ec) upstream.connect(backend, ec);  // the kernel drops what another address sends
  if (!ec) upstream.non_blocking(true, ec);
  if (ec) return end(f, FlowEnd::Refused, "upstream socket to " + str(backend) + ": " + ec.message());
  f.upstream = std::move(upstream);
  f.backend = backend;
  f.state = Flow::State::Forwarding;
  f.route_ms = ms_since(f.started);
  hooks_.registry->update(f.id, [&](conns::ConnInfo& i) {
    i.upstream = str(backend);
    i.state = "forwarding";
  });
  auto held = std::move(f.held);
  f.held.clear();
  f.held_bytes = 0;
  for (const auto& d : held) {
    to_backend(f, d);
    if (f.state != Flow::State::Forwarding) return;
  }
  to_kernel(f);
  asio::co_spawn(socket_.get_executor(),
                 [self = shared_from_this(), flow] { return self->receive_upstream(flow); },
                 asio::detached);
}

void QuicListener::to_kernel(Flow& f) {
  if (!hooks_.kernel) return;
  error_code ec;
  const udp::endpoint listener = socket_.local_endpoint(ec);
  const udp::endpoint upstream = ec ? udp::endpoint() : f.upstream->local_endpoint(ec);
  if (ec) return;
  udp_flow::UdpFlowSpec spec{sockaddr_of(f.client), sockaddr_of(listener), sockaddr_of(upstream),
                             sockaddr_of(f.backend)};
  std::string why;
  if (!hooks_.kernel->add(spec, why)) {
    if (auto n = kernel_refused_.due())
      spdlog::warn("listener {}: {} routed flow(s) forwarded in userspace since the last such "
                   "line: the kernel path refused them: {}",
                   name_, *n, why);
    return;
  }
  f.kernel = spec;
}

void QuicListener::sync_kernel(Flow& f) {
  auto c = hooks_.kernel->counters(*f.kernel);
  if (!c) return;
  f.counters->client_to_upstream += c->bytes_in - f.moved.bytes_in;
  f.counters->upstream_to_client += c->bytes_out - f.moved.bytes_out;
  if (c->last_seen_ns > f.moved.last_seen_ns) {
    const auto ago = std::chrono::nanoseconds(boottime_ns() - std::min(c->last_seen_ns, boottime_ns()));
    f.last_active = std::max(f.last_active, Clock::now() - ago);
  }
  f.moved = *c;
}

void QuicListener::to_backend(Flow& f, std::span<const std::uint8_t> datagram) {
  const ssize_t n = ::send(f.upstream->native_handle(), datagram.data(), datagram.size(),
                           MSG_DONTWAIT);
  // A full send buffer loses the datagram, as the network may: QUIC retransmits.
  if (n < 0 && errno == ECONNREFUSED)
    end(f, FlowEnd::Refused, "backend " + str(f.backend) + ": port unreachable");
}

void QuicListener::to_client(Flow& f, std::span<const std::uint8_t> datagram) {
  ++f.packets_out;
  f.counters->upstream_to_client += datagram.size();
  f.last_active = Clock::now();
  // From the listener's socket: the client sees replies from the address it sent to.
  ::sendto(socket_.native_handle(), datagram.data(), datagram.size(), MSG_DONTWAIT,
           f.client.data(), static_cast<socklen_t>(f.client.size()));
}

asio::awaitable<void> QuicListener::receive_upstream(FlowPtr flow) {
  Flow& f = *flow;
  while (f.state == Flow::State::Forwarding) {
    error_code ec;
    co_await f.upstream->async_wait(udp::socket::wait_read,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec || f.state != Flow::State::Forwarding) co_return;
    for (int round = 0; round < kBatchesPerWake; ++round) {
      std::error_code error;
      const std::size_t n = batch_.receive(f.upstream->native_handle(), error);
      if (error) {
        end(f, FlowEnd::Refused,
            "backend " + str(f.backend) + ": " +
                (error == std::errc::connection_refused ? "port unreachable" : error.message()));
        co_return;
      }
      for (std::size_t i = 0; i < n; ++i)
        if (!batch_.truncated(i)) to_client(f, batch_.datagram(i));
      if (n < DatagramBatch::kSize) break;
    }
  }
}

void QuicListener::end(Flow& f, FlowEnd how, const std::string& detail) {
  if (f.state == Flow::State::Dropped) return;
  f.state = Flow::State::Dropped;
  const FlowEnding ending{how, detail, f.route_ms, ms_since(f.started)};
  conns::ConnInfo::Datagrams datagrams{f.packets_in, f.packets_out};
  if (f.kernel) {
    // Its figures join the line (its bytes through the counters), then its datagrams come
    // back to the sockets, closed below.
    sync_kernel(f);
    datagrams.kernel = true;
    datagrams.kernel_packets_in = f.moved.packets_in;
    datagrams.kernel_packets_out = f.moved.packets_out;
    datagrams.packets_in += f.moved.packets_in;
    datagrams.packets_out += f.moved.packets_out;
    hooks_.kernel->remove(*f.kernel);
    f.kernel.reset();
  }
  error_code ignored;
  if (f.upstream) f.upstream->close(ignored);
  f.held.clear();
  f.held_bytes = 0;
  // The client retransmits its Initials for a while: they are swallowed, not each a new flow
  // with a line of its own.
  f.linger_until = Clock::now() + f.routes->listener->preread_timeout;
  // The registry's record of the flow is its line's, as a TCP connection's is.
  conns::ConnInfo info = hooks_.registry->take(f.id).value_or(conns::ConnInfo{});
  info.datagrams = datagrams;
  if (f.routes->ended) f.routes->ended(info, ending);
}

void QuicListener::forget(const udp::endpoint& client) {
  if (flows_.erase(client)) --count_->live;
  close_when_idle();
}

void QuicListener::kill(const udp::endpoint& client, std::uint64_t id, conns::KillReason reason) {
  auto it = flows_.find(client);
  if (it == flows_.end() || it->second->id != id) return;
  end(*it->second, reason == conns::KillReason::Banned ? FlowEnd::Banned : FlowEnd::Drain);
}

void QuicListener::arm_sweep() {
  sweep_timer_.expires_after(kSweepInterval);
  sweep_timer_.async_wait([weak = weak_from_this()](const error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || !self->socket_.is_open()) return;
    self->sweep();
    self->arm_sweep();
  });
}

void QuicListener::sweep() {
  const auto now = Clock::now();
  std::vector<udp::endpoint> gone;
  for (auto& [client, flow] : flows_) {
    Flow& f = *flow;
    const config::ListenerConfig& l = *f.routes->listener;
    switch (f.state) {
      case Flow::State::Dropped:
        if (now >= f.linger_until) gone.push_back(client);
        break;
      case Flow::State::Hello:
      case Flow::State::Resolving:
        if (now - f.started >= l.preread_timeout)
          end(f, FlowEnd::HelloTimeout,
              fmt::format("no route within preread_timeout ({}ms)", l.preread_timeout.count()));
        break;
      case Flow::State::Forwarding:
        // The kernel path's datagrams never reach last_active here: asked only when the flow
        // looks idle, so a busy one costs no lookup.
        if (f.kernel && now - f.last_active >= l.quic.flow_idle_timeout) sync_kernel(f);
        // An idle flow has nothing left to swallow: forgotten at once.
        if (now - f.last_active >= l.quic.flow_idle_timeout) {
          end(f, FlowEnd::Idle);
          gone.push_back(client);
        }
        break;
    }
  }
  for (const auto& client : gone) forget(client);
}

}  // namespace snigate::quic
