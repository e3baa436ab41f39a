#include "control/remote_server.h"

#include <set>
#include <utility>  // before boost/asio/awaitable.hpp (Boost 1.74)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "config/endpoint.h"
#include "control/format.h"
#include "control/protocol.h"
#include "control/remote_protocol.h"
#include "net/accept_backoff.h"

namespace snigate::control {

namespace asio = boost::asio;
using asio::ip::tcp;
using nlohmann::json;

struct RemoteBanServer::State {
  State(asio::io_context& io, const RemoteBanConfig& c, ControlHandlers h)
      : cfg(c), handlers(std::move(h)), auth(c.tokens, c.max_skew, 100000, WallClock::now()), limiter(c.rate, c.burst),
        acceptor(io) {}
  RemoteBanConfig cfg;
  ControlHandlers handlers;
  RemoteAuth auth;
  RateLimiter limiter;
  tcp::acceptor acceptor;
  std::set<std::shared_ptr<tcp::socket>> clients;
  net::ThrottledWarning accept_failures;
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

std::string encode(const json& reply) {
  return reply.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

// Runs a verified command; `what` says what was asked, for the log.
json run(const RemoteBanServer::State& s, const json& body, const tcp::endpoint& peer,
         std::string& what) {
  auto cmd_it = body.find("cmd");  // not body.value(): a non-string "cmd" would throw
  std::string cmd = cmd_it != body.end() && cmd_it->is_string() ? cmd_it->get<std::string>() : "";
  std::string error;
  if (cmd == "ban") {
    auto request = ban_request_from_json(body, error);
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
    auto outcome = s.handlers.ban(*request);
    if (!outcome.ok) return refused(outcome.error.empty() ? "ban refused" : outcome.error);
    auto message = format_ban_made(outcome.entry, std::chrono::system_clock::now());
    if (outcome.connections_closed)
      message += "; ended " + std::to_string(outcome.connections_closed) + " live connection(s)";
    return json{{"ok", true}, {"message", message}};
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
  return refused("unknown command '" + what + "' (the remote channel takes ban and unban)");
}

asio::awaitable<void> session(std::shared_ptr<RemoteBanServer::State> state,
                              std::shared_ptr<tcp::socket> socket, tcp::endpoint peer) {
  const std::string who = config::format_endpoint(peer);
  asio::steady_timer idle(socket->get_executor());
  auto arm = [&] {
    idle.expires_after(state->cfg.idle_timeout);
    idle.async_wait([socket](boost::system::error_code ec) {
      if (!ec) socket->close(ec);
    });
  };
  std::string buffer;
  for (;;) {
    arm();
    boost::system::error_code ec;
    std::size_t n = co_await asio::async_read_until(
        *socket, asio::dynamic_buffer(buffer, kRemoteMaxLine), '\n',
        asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::not_found) {
      spdlog::warn("remote ban: {}: refused: request longer than {} bytes", who, kRemoteMaxLine);
      co_await asio::async_write(*socket, asio::buffer(encode(refused("request too long"))),
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
    } else {
      std::string what;
      try {
        reply = run(*state, v.body, peer, what);
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
    co_await asio::async_write(*socket, asio::buffer(encode(reply)),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec || close_after) break;
  }
  idle.cancel();
  boost::system::error_code ignored;
  socket->close(ignored);
  state->clients.erase(socket);
}

bool allowed(const RemoteBanConfig& cfg, const asio::ip::address& peer) {
  if (cfg.allow.empty()) return true;
  for (const auto& p : cfg.allow)
    if (p.contains(peer)) return true;
  return false;
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
      asio::write(*socket,
                  asio::buffer(encode(retry ? refused(refusal, true) : channel_refused(refusal))), ec);
      continue;
    }
    state->clients.insert(socket);
    asio::co_spawn(executor, session(state, socket, peer), asio::detached);
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
  spdlog::info("remote ban: listening on {} ({} token(s), {}/s per peer, burst {})",
               config::format_endpoint(state->acceptor.local_endpoint()), cfg.tokens.size(), cfg.rate, cfg.burst);
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

}  // namespace snigate::control
