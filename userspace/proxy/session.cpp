#include "proxy/session.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "forward/forward_settings.h"
#include "net/co_spawn_now.h"
#include "net/ready_wait.h"
#include "net/tcp_inq.h"
#include "parser/http_host.h"
#include "parser/proxy_protocol.h"
#include "parser/tls_client_hello.h"
#include "upstream/connect.h"

namespace snigate::proxy {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// A forward destination refused or unreachable, in the access log's end reasons; the precise
// verdict (forward::to_string) goes in the detail.
EndReason forward_end(forward::Verdict verdict) {
  switch (verdict) {
    case forward::Verdict::Allowed: return EndReason::ClientReset;  // left before its 200
    case forward::Verdict::BadRequest: return EndReason::ParseError;
    case forward::Verdict::AuthRequired:
    case forward::Verdict::DeniedClient:
    case forward::Verdict::DeniedName:
    case forward::Verdict::DeniedAddress: return EndReason::NoRoute;
    default: return EndReason::Refused;
  }
}

// The verdict of a forward connection, in its `snigatectl conns` row and its access-log line.
void show_forward(const forward::ForwardResult& f, conns::ConnInfo& info) {
  info.forward = {f.requested(), f.resolved_list(), forward::to_string(f.verdict)};
}

// Longest PROXY v2 header: 16-byte preamble plus a 16-bit length.
constexpr std::size_t kProxyHeaderMax = 16 + 65535;

constexpr std::size_t kReadChunk = 4096;  // most a preread recv asks for

// recv(2) of up to `room` bytes (at most kReadChunk) appended to `buffer`. Through a stack
// array left uninitialised: growing the vector to receive into would zero-fill the whole
// chunk, which recv then overwrites (~10% of a relayed connection's instructions in callgrind).
// Not a coroutine, so the array is on the thread's stack, not in a coroutine frame.
net::Received recv_appending(int fd, std::vector<std::uint8_t>& buffer, std::size_t room) {
  std::array<std::uint8_t, kReadChunk> chunk;
  const net::Received r = net::recv_with_hint(fd, chunk.data(), std::min(room, chunk.size()));
  if (r.n > 0) buffer.insert(buffer.end(), chunk.data(), chunk.data() + r.n);
  return r;
}

}  // namespace

Session::Session(Accepted accepted, std::shared_ptr<const Generation> generation,
                 const ListenerSettings& listener, SessionContext& context)
    : client_(std::move(accepted.socket)),
      generation_(std::move(generation)),
      listener_(listener),
      context_(context),
      pre_(std::make_unique<PreRelay>(client_.get_executor())) {
  pre_->peer = accepted.peer;
  pre_->local_known = accepted.local.has_value();
  if (pre_->local_known) pre_->local = *accepted.local;
}

void Session::start() {
  // At once, not posted (net/co_spawn_now.h): the hello is read before the next epoll_wait.
  net::co_spawn_now(client_.get_executor(), [self = shared_from_this()] { return self->run(); });
}

void Session::kill(conns::KillReason reason) {
  asio::post(client_.get_executor(), [weak = weak_from_this(), reason] {
    auto self = weak.lock();
    if (!self) return;
    self->killed_ = reason == conns::KillReason::Banned ? EndReason::Banned : EndReason::DrainTimeout;
    error_code ignored;
    self->client_.close(ignored);
    if (self->upstream_) self->upstream_->close(ignored);
  });
}

bool Session::banned(const asio::ip::address& address) const {
  const bans::BanCheck* check = context_.ban_check.load();
  return check && check->banned(net::unmap(address));
}

bool Session::admit(const asio::ip::address& client) {
  const auto& d = generation_->config->daemon;
  auto ticket = context_.client_limits.admit(
      client, {d.max_connections_per_client, d.max_prereads_per_client}, &detail_);
  if (!ticket) return false;
  ticket_.emplace(std::move(*ticket));
  return true;
}

void Session::arm_deadline() {
  // The deadline lives in pre_: while it can act, the Session is alive.
  pre_->deadline.arm_at(started_ + listener_.config->preread_timeout, [this] {
    error_code ignored;
    client_.close(ignored);
  });
}

void Session::disarm_deadline() {
  if (pre_) pre_->deadline.cancel();
}

asio::awaitable<void> Session::run() {
  started_ = std::chrono::steady_clock::now();
  listener_.metrics->accepted.add();
  listener_.metrics->active.add();
  error_code ec;
  if (!pre_->local_known) pre_->local = client_.local_endpoint(ec);
  pre_->client = pre_->peer;
  pre_->destination = pre_->local;
  id_ = context_.registry.next_id();
  counters_.mode = generation_->relay->mode();

  conns::ConnInfo info;
  info.id = id_;
  info.listener = listener_.name();
  info.peer = pre_->peer;
  info.client = net::unmap(pre_->peer.address());
  info.client_port = pre_->peer.port();
  info.state = "preread";
  info.started = std::chrono::system_clock::now();
  // Part of this session: no allocation of its own, alive while a snapshot shows it.
  info.counters = std::shared_ptr<const relay::Counters>(shared_from_this(), &counters_);
  context_.registry.add(std::move(info), [weak = weak_from_this()](conns::KillReason reason) {
    if (auto self = weak.lock()) self->kill(reason);
  });

  EndReason end = EndReason::Error;
  try {
    end = co_await steps();
  } catch (const std::exception& e) {
    detail_ = e.what();
    end = EndReason::Error;
  }
  // Relaying: the relay's callback ends the connection; this coroutine's frames go now, so
  // an idle connection holds none.
  if (!handed_over_) finish(end);
}

void Session::finish(EndReason end) {
  disarm_deadline();
  error_code ignored;
  if (upstream_) upstream_->close(ignored);
  client_.close(ignored);
  // The registry's record of the connection is the access log's too.
  const std::optional<conns::ConnInfo> info = context_.registry.take(id_);
  ticket_.reset();
  if (info)
    log_end(end, *info);  // not `info ? *info : ConnInfo{}`, which copies the record
  else
    log_end(end, conns::ConnInfo{});
}

void Session::log_end(EndReason end, const conns::ConnInfo& info) {
  const AccessRecord record = access_record(info, {end, detail_, connect_ms_, ms_since(started_)});
  context_.stats.ended(*listener_.metrics,
                       {end, backend_ ? backend_->metrics : nullptr,
                        backend_ ? &info.backend : nullptr, record.bytes_in,
                        record.bytes_out, relayed_ ? counters_.mode.load() : relay::Mode::Auto,
                        counters_.fallback});
  context_.access_log.write(record);
}

asio::awaitable<bool> Session::read_more(std::size_t max_total) {
  const std::size_t old = pre_->buffer.size();
  const std::size_t room = std::min(kReadChunk, max_total > old ? max_total - old : 0);
  if (room == 0) co_return false;
  for (;;) {
    // recv(2) first: under defer_accept the bytes are usually in, and then neither a wait nor
    // the preread deadline's timer is needed. Its TCP_INQ hint tells the relay whether the
    // client has sent more (net/ready_wait.h's known_empty): if not, it needs no read to know.
    const net::Received r = recv_appending(client_.native_handle(), pre_->buffer, room);
    const ssize_t n = r.n;
    if (n > 0) {
      net::note_read(client_, r.nothing_left ? net::ReadShowed::NothingLeft
                                             : net::ReadShowed::MaybeMore);
      co_return true;
    }
    if (n == 0) {
      detail_ = "client closed during preread";
      co_return false;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      detail_ = error_code(errno, boost::system::system_category()).message();
      co_return false;
    }
    net::note_read(client_, net::ReadShowed::WouldBlock);
    // A wait: the deadline (from the accept) bounds it. Closing the socket ends it.
    arm_deadline();
    error_code ec;
    co_await net::async_wait_after_would_block(client_, tcp::socket::wait_read,
                                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      detail_ = ec.message();
      co_return false;
    }
  }
}

asio::awaitable<EndReason> Session::steps() {
  const std::size_t limit = generation_->max_connections;
  if (context_.registry.size() > limit) {
    if (auto refused = context_.at_capacity.due())
      spdlog::warn("max_connections ({}) reached: refused {} connection(s) since the last such "
                   "line; they are closed at once (end=limit) until some end",
                   limit, *refused);
    co_return EndReason::Limit;
  }
  if (banned(pre_->peer.address())) co_return EndReason::Banned;
  // Behind PROXY in, the peer is a trusted proxy carrying many clients: the client is counted
  // once its header names it.
  if (!listener_.config->proxy_protocol_in && !admit(pre_->peer.address())) co_return EndReason::Limit;

  // The PROXY header comes before anything the client itself sent, on every listener kind: a
  // CONNECT listener behind a load balancer must not take the header for its request, nor
  // tunnel for an untrusted peer, and the real client's bans apply to its tunnels too.
  if (listener_.config->proxy_protocol_in) {
    EndReason e = co_await read_proxy_header();
    if (e != EndReason::Clean) co_return e;
    if (banned(pre_->client.address())) co_return EndReason::Banned;
    if (!admit(pre_->client.address())) co_return EndReason::Limit;
  }
  // `protocol = "connect"` listeners read a CONNECT request instead of a ClientHello (head,
  // auth, allow-list, DNS, reply), then relay the bytes the client sent after its head. The
  // handshake bounds its head read itself; DNS and connect have their own timeouts.
  if (listener_.config->protocol == config::Protocol::Connect) {
    disarm_deadline();
    co_return co_await forward_and_relay(
        forward::serve_connect(client_, pre_->buffer, *generation_->forward, listener_.name(),
                               pre_->client.address(),
                               [this](const std::string& host, std::uint16_t port) {
                                 show_destination(host, port);
                               }),
        config::ProxyProtocol::Off);
  }
  if (EndReason e = co_await preread(); e != EndReason::Clean) co_return e;
  listener_.metrics->preread.observe(std::chrono::steady_clock::now() - started_);
  disarm_deadline();
  if (ticket_) ticket_->preread_done();

  const routing::RouteMatch route = listener_.table->route(
      {pre_->name, &pre_->alpn, net::unmap(pre_->client.address())});
  if (!route.backend) {
    detail_ = "no route for this name and no default";
    co_return EndReason::NoRoute;
  }
  context_.registry.update(id_, [&](conns::ConnInfo& i) {
    i.backend = *route.backend;
    i.rule = *route.rule;
  });
  co_return co_await connect_and_relay(*route.backend);
}

asio::awaitable<EndReason> Session::read_proxy_header() {
  if (!net::contains_any(listener_.config->trusted_proxies, pre_->peer.address())) {
    detail_ = "peer not in trusted_proxies";
    co_return EndReason::Untrusted;
  }
  for (;;) {
    parser::ProxyDecode d = parser::decode_proxy_header(pre_->buffer);
    if (d.status == parser::Status::Error) {
      detail_ = d.error;
      co_return EndReason::ProxyError;
    }
    if (d.status == parser::Status::Done) {
      if (!d.header.local) {
        pre_->client = d.header.source;
        pre_->destination = d.header.destination;
        context_.registry.update(id_, [c = pre_->client](conns::ConnInfo& i) {
          i.client = net::unmap(c.address());
          i.client_port = c.port();
        });
      }
      // Bytes after the header are the start of the client's own stream.
      auto& buffer = pre_->buffer;
      buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(d.consumed));
      co_return EndReason::Clean;
    }
    if (!co_await read_more(kProxyHeaderMax))
      co_return pre_->deadline.expired() ? EndReason::PrereadTimeout
                              : killed_ ? *killed_ : EndReason::ProxyError;
  }
}

asio::awaitable<EndReason> Session::preread() {
  const std::size_t max = listener_.config->preread_max;
  // Each re-call resumes where the last one stopped (pre_->buffer only grows at its end from here
  // on), so a hello or head dripped a byte at a time is not re-parsed from its first byte.
  parser::TlsCursor tls_cursor;
  parser::HttpCursor http_cursor;
  for (;;) {
    if (!pre_->buffer.empty()) {
      if (listener_.http()) {
        parser::HttpPreread p = parser::parse_http_preread(pre_->buffer, http_cursor, max);
        if (p.status == parser::Status::Done) {
          pre_->name = p.head.host;
          break;
        }
        if (p.status == parser::Status::Error) {
          detail_ = p.error;
          co_return EndReason::ParseError;
        }
      } else {
        parser::TlsPreread p = parser::parse_tls_preread(pre_->buffer, tls_cursor, max);
        if (p.status == parser::Status::Done) {
          pre_->name = p.hello.sni;
          pre_->alpn = std::move(p.hello.alpn);
          break;
        }
        if (p.status == parser::Status::Error) {
          detail_ = std::string(parser::to_string(p.error)) +
                           (p.detail.empty() ? "" : ": " + p.detail);
          // A client configured with this listener as its HTTP proxy: say so, not just "not TLS".
          if (auto why = forward::explain_not_tls(pre_->buffer)) detail_ = *why;
          co_return EndReason::ParseError;
        }
      }
    }
    if (!co_await read_more(max))
      co_return pre_->deadline.expired() ? EndReason::PrereadTimeout
                              : killed_ ? *killed_ : EndReason::ParseError;
  }
  context_.registry.update(id_, [&](conns::ConnInfo& i) {
    i.server_name = pre_->name;
    i.alpn = conns::alpn_list(pre_->alpn);
    i.state = "connecting";
  });
  co_return EndReason::Clean;
}

asio::awaitable<EndReason> Session::connect_and_relay(const std::string& backend_name) {
  const BackendSettings* backend = generation_->backend(backend_name);
  if (!backend) {
    detail_ = "backend '" + backend_name + "' is not defined";
    co_return EndReason::NoRoute;
  }
  backend_ = backend;
  // A backend with `forward = PORT` connects to the SNI/Host name itself (allow-list, DNS,
  // address policy) instead of its server list.
  if (backend->config->forward_port) {
    show_destination(pre_->name, *backend->config->forward_port);
    co_return co_await forward_and_relay(
        forward::open_forward(client_.get_executor(), *generation_->forward, backend_name,
                              pre_->name),
        backend->config->proxy_protocol);
  }
  const auto connect_start = std::chrono::steady_clock::now();
  std::vector<std::uint8_t> first = first_bytes(backend->config->proxy_protocol);
  upstream::ConnectResult r =
      co_await upstream::connect_upstream(*backend->pool, *backend->config, first);
  for (const auto& a : r.attempts) {
    if (a.index >= backend->servers.size()) continue;
    ServerMetrics& server = *backend->servers[a.index];
    if (upstream::no_local_port(a)) {
      server.no_local_port.add();
      if (auto n = context_.no_local_port.due())
        spdlog::warn("no free local port towards {} ({} connect(s) since the last such line): "
                     "open connections and the TIME_WAIT ends of those this host closed first "
                     "hold them; more server addresses, source addresses (source=ADDR) or a "
                     "wider net.ipv4.ip_local_port_range give more",
                     a.server, *n);
    } else if (a.error) {
      server.failures.add();
    } else {
      server.connects.add();
      server.connect_time.observe(a.took);
    }
  }
  if (killed_) co_return *killed_;
  if (!r.socket) {
    for (const auto& a : r.attempts)
      detail_ += (detail_.empty() ? "" : ";") + a.server + ":" +
                 (a.at_source ? "binding source: " : "") + a.error.message();
    if (r.attempts.empty()) detail_ = "no server available";
    co_return EndReason::Refused;
  }
  connect_ms_ = ms_since(connect_start);
  co_return co_await send_and_relay(std::move(*r.socket), r.remote, std::move(first), r.sent);
}

void Session::show_destination(const std::string& host, std::uint16_t port) {
  context_.registry.update(id_, [&](conns::ConnInfo& i) {
    i.server_name = host;
    i.forward = {.requested = host + ":" + std::to_string(port), .resolved = {},
                 .verdict = "pending"};
    i.state = "connecting";
  });
}

asio::awaitable<EndReason> Session::forward_and_relay(asio::awaitable<forward::ForwardResult> open,
                                                      config::ProxyProtocol proxy_protocol) {
  // `open` starts here (an awaitable runs when awaited): a CONNECT's time includes its head.
  const auto connect_start = std::chrono::steady_clock::now();
  forward::ForwardResult f = co_await std::move(open);
  if (killed_) co_return *killed_;
  // A CONNECT head is read by asio, which takes a short read as the end of what is there (a
  // FIN may have come with it): the relay reads the client before it waits.
  if (listener_.config->protocol == config::Protocol::Connect)
    net::note_read(client_, net::ReadShowed::MaybeMore);
  // A CONNECT's preread ends with its head (SNI forwarding's ended before the route: no-op).
  if (ticket_) ticket_->preread_done();
  detail_ = f.detail;
  context_.registry.update(id_, [&](conns::ConnInfo& i) {
    // A CONNECT is named by its request, which may never have named a destination; SNI
    // forwarding keeps its ClientHello's name as it came.
    if (listener_.config->protocol == config::Protocol::Connect) i.server_name = f.name;
    show_forward(f, i);
  });
  if (!f.ok()) co_return forward_end(f.verdict);
  connect_ms_ = ms_since(connect_start);
  co_return co_await send_and_relay(std::move(*f.upstream), f.connected,
                                    first_bytes(proxy_protocol), 0);
}

// The PROXY header and the preread bytes, sent in one write (with the connect where it can), so
// the backend sees them in one segment where it fits (some servers read the header with a
// single recv).
std::vector<std::uint8_t> Session::first_bytes(config::ProxyProtocol proxy_protocol) const {
  std::vector<std::uint8_t> out;
  const std::string first_alpn = pre_->alpn.empty() ? std::string() : pre_->alpn.front();
  switch (proxy_protocol) {
    case config::ProxyProtocol::Off:
      break;
    case config::ProxyProtocol::V1: {
      std::string h = parser::encode_proxy_v1(pre_->client, pre_->destination);
      out.assign(h.begin(), h.end());
      break;
    }
    case config::ProxyProtocol::V2:
      out = parser::encode_proxy_v2(pre_->client, pre_->destination,
                                    listener_.http() ? std::string_view{} : pre_->name,
                                    first_alpn);
      break;
  }
  out.insert(out.end(), pre_->buffer.begin(), pre_->buffer.end());
  return out;
}

asio::awaitable<EndReason> Session::send_and_relay(tcp::socket upstream,
                                                   const tcp::endpoint& remote,
                                                   std::vector<std::uint8_t> out,
                                                   std::size_t sent) {
  upstream_ = std::move(upstream);
  error_code ec;
  upstream_->set_option(tcp::no_delay(true), ec);
  context_.registry.update(id_, [&](conns::ConnInfo& i) {
    i.upstream = endpoint_text(remote.address(), remote.port());
    i.state = "relaying";
  });

  counters_.client_to_upstream += pre_->buffer.size();
  if (sent < out.size())
    co_await asio::async_write(*upstream_, asio::buffer(out) + sent,
                               asio::redirect_error(asio::use_awaitable, ec));
  if (killed_) co_return *killed_;
  if (ec) {
    detail_ = "writing to upstream: " + ec.message();
    co_return EndReason::UpstreamReset;
  }
  pre_.reset();  // what the relayed connection does not need goes before it idles

  relayed_ = true;
  handed_over_ = true;
  generation_->relay->start(client_, *upstream_, generation_->relay_options, counters_,
                            [self = shared_from_this()](relay::Result result) {
                              if (!result.detail.empty()) self->detail_ = result.detail;
                              self->finish(self->killed_ && result.end == relay::End::Aborted
                                               ? *self->killed_
                                               : from_relay(result.end));
                            });
  co_return EndReason::Clean;
}

}  // namespace snigate::proxy
