#include "control/remote_server.h"

#include <atomic>

#include <set>
#include <type_traits>
#include <utility>  // before boost/asio/awaitable.hpp (Boost 1.74)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "config/endpoint.h"
#include "control/format.h"
#include "control/protocol.h"
#include "control/remote_protocol.h"
#include "control/remote_tls.h"
#include "net/accept_backoff.h"
#include "net/deadline.h"

namespace snigate::control {

namespace asio = boost::asio;
using asio::ip::tcp;
using nlohmann::json;

struct RemoteBanServer::State {
  State(asio::io_context& io, const RemoteBanConfig& c, ControlHandlers h)
      : cfg(c),
        handlers(std::move(h)),
        auth(c.tokens, c.max_skew, 100000, WallClock::now(), c.name),
        limiter(c.rate, c.burst),
        ban_limiter(c.ban_rate, c.ban_burst),
        acceptor(io) {}
  RemoteBanConfig cfg;
  ControlHandlers handlers;
  RemoteAuth auth;
  RateLimiter limiter;      // requests
  RateLimiter ban_limiter;  // bans, one token each whether alone or in a batch
  std::shared_ptr<asio::ssl::context> tls;  // null: plain TCP
  tcp::acceptor acceptor;
  std::set<std::shared_ptr<tcp::socket>> clients;
  net::ThrottledWarning accept_failures;
  // Connections turned away and requests answered ok=false, for the metrics.
  std::atomic<std::uint64_t> refused{0};
  void count_refusal() { refused.fetch_add(1, std::memory_order_relaxed); }
};

namespace {

json refused(const std::string& why, bool retry = false) {
  return json{{"ok", false}, {"error", why}, {"retry", retry}};
}

// A refusal of the channel (token, clock, version, allow-list) rather than of the ban: the
// watcher keeps such bans and sends them again once the edge accepts it (protocol "channel").
json channel_refused(const std::string& why) {
  json j = refused(why);
  j["channel"] = true;
  return j;
}

// Not body.value(): a non-string "cmd" would throw.
std::string command(const json& body) {
  auto it = body.find("cmd");
  return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string encode(const json& reply) {
  return reply.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

json rate_limited_ban(const RemoteBanServer::State& s) {
  return refused("rate limited: more than " + std::to_string(static_cast<long>(s.cfg.ban_rate)) +
                     " bans/s (burst " + std::to_string(static_cast<long>(s.cfg.ban_burst)) +
                     ", [remote_ban] ban_rate/ban_burst); retry",
                 true);
}

// One ban, alone or an item of a batch: its reply. `what` says what was asked, for the log.
json ban_one(const RemoteBanServer::State& s, const json& item, const tcp::endpoint& peer,
             std::string& what) {
  std::string error;
  auto request = ban_request_from_json(item, error);
  if (!request) return what = "ban", refused("ban: " + error);
  what = "ban " + request->prefix.str();
  const bool v4 = request->prefix.is_v4();
  const unsigned widest = v4 ? s.cfg.min_prefix_v4 : s.cfg.min_prefix_v6;
  if (request->prefix.length() < widest)
    return refused("ban " + request->prefix.str() + ": wider than /" + std::to_string(widest) +
                   ", the widest this edge takes from the remote channel ([remote_ban] " +
                   (v4 ? "min_prefix_v4" : "min_prefix_v6") +
                   "); ban it with snigatectl on the edge if it is meant");
  request->source = "remote:" + peer.address().to_string();
  request->force = false;  // an `ignore` network stays the edge operator's call
  try {
    auto outcome = s.handlers.ban(*request);
    if (!outcome.ok) return refused(outcome.error.empty() ? "ban refused" : outcome.error);
    auto message = format_ban_made(outcome.entry, std::chrono::system_clock::now());
    if (outcome.connections_closed)
      message += "; ended " + std::to_string(outcome.connections_closed) + " live connection(s)";
    return json{{"ok", true}, {"message", message}};
  } catch (const std::exception& e) {
    return refused(std::string("failed inside the daemon: ") + e.what(), true);
  }
}

// Runs a verified single command (ban, unban); `what` says what was asked, for the log.
json run(RemoteBanServer::State& s, const std::string& cmd, const json& body,
         const tcp::endpoint& peer, std::string& what) {
  std::string error;
  if (cmd == "ban") {
    if (!s.ban_limiter.allow(peer.address(), RateLimiter::Clock::now()))
      return what = "ban", rate_limited_ban(s);
    return ban_one(s, body, peer, what);
  }
  if (cmd == "unban") {
    auto it = body.find("prefix");
    auto prefix = it != body.end() && it->is_string()
                      ? net::Prefix::parse(it->get<std::string>(), &error)
                      : std::nullopt;
    if (!prefix) return what = "unban", refused("unban: " + (error.empty() ? "'prefix' is required" : error));
    what = "unban " + prefix->str();
    if (!s.handlers.unban(*prefix)) return refused("no ban on " + prefix->str());
    return json{{"ok", true}, {"message", "unbanned " + prefix->str()}};
  }
  what = cmd.empty() ? "no command" : cmd;
  return refused("unknown command '" + what + "' (the remote channel takes ban, bans and unban)");
}

// "bans": each ban answered on its own, in order. Bans past the peer's ban bucket are
// answered "rate limited" (retryable) without being tried. The control socket shares this
// io_context, so the loop lets it in every few bans: a 500-ban batch never holds a
// `snigatectl ban` for its whole length.
asio::awaitable<json> run_batch(RemoteBanServer::State& s, const json& body,
                                const tcp::endpoint& peer, const std::string& who,
                                const std::string& token) {
  auto list = body.find("bans");
  if (list == body.end() || !list->is_array())
    co_return refused("bans: 'bans' must be a list of ban requests");
  if (list->size() > kRemoteMaxBatch)
    co_return refused("bans: " + std::to_string(list->size()) + " bans in one request; at most " +
                      std::to_string(kRemoteMaxBatch));
  const std::size_t granted = s.ban_limiter.take(peer.address(), RateLimiter::Clock::now(), list->size());
  json results = json::array();
  std::size_t accepted = 0, refused_count = 0;
  std::string first_refusal, first_accepted;
  for (std::size_t i = 0; i < list->size(); ++i) {
    if (i && i % 32 == 0) co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    // The server may have stopped while we let others in: its handlers may be gone.
    const bool stopping = !s.acceptor.is_open();
    std::string what;
    json r = stopping       ? refused("the edge is shutting down; retry", true)
             : i < granted ? ban_one(s, (*list)[i], peer, what)
                           : rate_limited_ban(s);
    if (r.value("ok", false)) {
      if (!accepted++) first_accepted = what;
    } else {
      ++refused_count;
      if (first_refusal.empty())
        first_refusal = (what.empty() ? "ban" : what) + ": " + r.value("error", std::string());
    }
    results.push_back(std::move(r));
  }
  if (list->size() == 1 && accepted)  // as a lone "ban" is logged
    spdlog::info("remote ban: {} ({}): accepted {}: {}", who, token, first_accepted,
                 results[0].value("message", std::string()));
  else if (list->size() == 1)
    spdlog::warn("remote ban: {} ({}): refused {}", who, token, first_refusal);
  else if (refused_count)
    spdlog::warn("remote ban: {} ({}): batch of {}: {} accepted, {} refused (first: {})", who,
                 token, list->size(), accepted, refused_count, first_refusal);
  else
    spdlog::info("remote ban: {} ({}): batch of {}: all accepted (first: {})", who, token,
                 list->size(), first_accepted);
  co_return json{{"ok", true}, {"results", std::move(results)}};
}

using TlsStream = asio::ssl::stream<tcp::socket>;

// `stream`: the plain socket, or TLS over it; `socket`: the TCP socket under it, which the
// server closes at its end (an alias of `stream`, so it keeps the stream alive).
template <class Stream>
asio::awaitable<void> session(std::shared_ptr<RemoteBanServer::State> state,
                              std::shared_ptr<Stream> stream, std::shared_ptr<tcp::socket> socket,
                              tcp::endpoint peer) {
  const std::string who = config::format_endpoint(peer);
  net::Deadline idle(socket->get_executor());
  auto arm = [&] {
    idle.arm(state->cfg.idle_timeout, [&socket = *socket] {
      boost::system::error_code ignored;
      socket.close(ignored);
    });
  };
  auto end = [&] {
    idle.cancel();
    boost::system::error_code ignored;
    socket->close(ignored);
    state->clients.erase(socket);
  };
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    arm();
    boost::system::error_code ec;
    co_await stream->async_handshake(asio::ssl::stream_base::server,
                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      // Among them: a peer without a certificate from [remote_ban] tls_client_ca.
      spdlog::warn("remote ban: {}: refused: TLS handshake failed: {}", who, ec.message());
      state->count_refusal();
      end();
      co_return;
    }
  }
  std::string buffer;
  for (;;) {
    arm();
    boost::system::error_code ec;
    std::size_t n = co_await asio::async_read_until(
        *stream, asio::dynamic_buffer(buffer, kRemoteMaxLine), '\n',
        asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::not_found) {
      spdlog::warn("remote ban: {}: refused: request longer than {} bytes", who, kRemoteMaxLine);
      state->count_refusal();
      co_await asio::async_write(*stream, asio::buffer(encode(refused("request too long"))),
                                 asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    if (ec) break;
    std::string line = buffer.substr(0, n - 1);
    buffer.erase(0, n);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;

    json reply;
    bool close_after = false;
    if (!state->limiter.allow(peer.address(), RateLimiter::Clock::now())) {
      // Closing makes a flooding peer pay a handshake per request (and per log line).
      spdlog::warn("remote ban: {}: refused: rate limited ({}/s, burst {})", who,
                   state->cfg.rate, state->cfg.burst);
      reply = refused("rate limited; slow down and retry", true);
      close_after = true;
    } else if (auto v = state->auth.verify(line, WallClock::now()); !v.ok) {
      spdlog::warn("remote ban: {}: refused: {}", who, v.reason);
      reply = v.retry ? refused(v.reason, true) : channel_refused(v.reason);
    } else if (auto cmd = command(v.body); cmd == "bans") {
      reply = co_await run_batch(*state, v.body, peer, who, state->cfg.token_names.at(v.token));
    } else {
      std::string what;
      try {
        reply = run(*state, cmd, v.body, peer, what);
      } catch (const std::exception& e) {
        reply = refused(std::string("failed inside the daemon: ") + e.what(), true);
      }
      const auto& token = state->cfg.token_names.at(v.token);
      if (reply.value("ok", false))
        spdlog::info("remote ban: {} ({}): accepted {}: {}", who, token, what,
                     reply.value("message", std::string()));
      else
        spdlog::warn("remote ban: {} ({}): refused {}: {}", who, token, what,
                     reply.value("error", std::string()));
    }
    if (!reply.value("ok", false)) state->count_refusal();
    co_await asio::async_write(*stream, asio::buffer(encode(reply)),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec || close_after) break;
  }
  end();
}

bool allowed(const RemoteBanConfig& cfg, const asio::ip::address& peer) {
  return cfg.allow.empty() || net::contains_any(cfg.allow, peer);
}

asio::awaitable<void> accept_loop(std::shared_ptr<RemoteBanServer::State> state) {
  auto executor = co_await asio::this_coro::executor;
  for (;;) {
    auto socket = std::make_shared<tcp::socket>(executor);
    boost::system::error_code ec;
    co_await state->acceptor.async_accept(*socket, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !state->acceptor.is_open()) co_return;
    if (ec) {
      co_await net::back_off_after_accept_error("remote ban", ec, state->accept_failures);
      continue;
    }
    auto peer = socket->remote_endpoint(ec);
    if (ec) continue;
    std::string refusal;
    bool retry = false;
    if (!allowed(state->cfg, peer.address())) {
      refusal = "peer not in [remote_ban] allow";
    } else if (state->clients.size() >= state->cfg.max_connections) {
      refusal = "too many connections open";
      retry = true;
    }
    if (!refusal.empty()) {
      spdlog::warn("remote ban: {}: refused: {}", config::format_endpoint(peer), refusal);
      state->count_refusal();
      // Said in the clear only on a plain listener; a TLS peer sees the connection close.
      if (!state->tls)
        asio::write(*socket,
                    asio::buffer(encode(retry ? refused(refusal, true) : channel_refused(refusal))), ec);
      continue;
    }
    if (state->tls) {
      auto stream = std::make_shared<TlsStream>(std::move(*socket), *state->tls);
      std::shared_ptr<tcp::socket> lowest(stream, &stream->next_layer());
      state->clients.insert(lowest);
      asio::co_spawn(executor, session(state, stream, lowest, peer), asio::detached);
    } else {
      state->clients.insert(socket);
      asio::co_spawn(executor, session(state, socket, socket, peer), asio::detached);
    }
  }
}

}  // namespace

std::unique_ptr<RemoteBanServer> RemoteBanServer::start(asio::io_context& io,
                                                        const RemoteBanConfig& cfg,
                                                        ControlHandlers handlers,
                                                        std::string& error) {
  if (!handlers.ban || !handlers.unban) {
    error = "remote ban channel needs the ban and unban handlers";
    return nullptr;
  }
  auto state = std::make_shared<State>(io, cfg, std::move(handlers));
  if (cfg.tls.enabled() && !(state->tls = make_edge_tls(cfg.tls, error))) {
    error = "[remote_ban] " + error;
    return nullptr;
  }
  if (!cfg.replay_file.empty()) {
    if (auto why = state->auth.remember_in(cfg.replay_file); !why.empty()) {
      error = "[remote_ban] replay memory: " + why;
      return nullptr;
    }
  }
  boost::system::error_code ec;
  state->acceptor.open(cfg.listen.protocol(), ec);
  if (!ec) state->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) state->acceptor.bind(cfg.listen, ec);
  if (!ec) state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = "[remote_ban] cannot listen on " + config::format_endpoint(cfg.listen) + ": " + ec.message();
    return nullptr;
  }
  asio::co_spawn(io, accept_loop(state), asio::detached);
  spdlog::info("remote ban: listening on {}{} as edge \"{}\" ({} token(s); per peer {} requests/s, "
               "burst {}, and {} bans/s, burst {})",
               config::format_endpoint(state->acceptor.local_endpoint()),
               state->tls ? " (TLS, client certificates required)" : "", cfg.name,
               cfg.tokens.size(), cfg.rate, cfg.burst, cfg.ban_rate, cfg.ban_burst);
  if (cfg.name.empty())
    spdlog::warn("remote ban: no [remote_ban] name, so a request signed for another edge that "
                 "shares a token is taken here too; name each edge (and set [edge] name in "
                 "snigate-watch) to bind requests to it");
  return std::unique_ptr<RemoteBanServer>(new RemoteBanServer(std::move(state)));
}

RemoteBanServer::~RemoteBanServer() {
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
  for (const auto& socket : state_->clients) socket->close(ignored);
}

tcp::endpoint RemoteBanServer::local_endpoint() const {
  boost::system::error_code ec;
  return state_->acceptor.local_endpoint(ec);
}

std::uint64_t RemoteBanServer::refused() const {
  return state_->refused.load(std::memory_order_relaxed);
}

}  // namespace snigate::control
