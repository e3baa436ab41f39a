#include "metrics/metrics_server.h"

#include <set>
#include <string_view>
#include <utility>  // before boost/asio/awaitable.hpp (Boost 1.74)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "metrics/exposition.h"
#include "net/accept_backoff.h"
#include "net/deadline.h"

namespace snigate::metrics {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

struct MetricsServer::State {
  State(asio::io_context& io, Render r, ServerOptions o)
      : render(std::move(r)), options(o), acceptor(io) {}
  Render render;
  ServerOptions options;
  tcp::acceptor acceptor;
  std::set<std::shared_ptr<tcp::socket>> clients;
  net::ThrottledWarning accept_failures;
};

namespace {

std::string message(std::string_view status, std::string_view type, std::string_view body) {
  return fmt::format("HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n"
                     "Connection: close\r\n\r\n{}",
                     status, type, body.size(), body);
}

asio::awaitable<void> session(std::shared_ptr<MetricsServer::State> state,
                              std::shared_ptr<tcp::socket> socket) {
  net::Deadline deadline(socket->get_executor());
  deadline.arm(state->options.read_timeout, [&socket = *socket] {
    error_code ignored;
    socket.close(ignored);
  });
  std::string buffer;
  error_code ec;
  co_await asio::async_read_until(*socket,
                                  asio::dynamic_buffer(buffer, state->options.max_request),
                                  "\r\n\r\n", asio::redirect_error(asio::use_awaitable, ec));
  std::string reply;
  if (ec == asio::error::not_found)
    reply = message("431 Request Header Fields Too Large", "text/plain", "request too large\n");
  else if (!ec)
    reply = respond(buffer, state->render);
  if (!reply.empty())
    co_await asio::async_write(*socket, asio::buffer(reply),
                               asio::redirect_error(asio::use_awaitable, ec));
  deadline.cancel();
  error_code ignored;
  socket->shutdown(tcp::socket::shutdown_both, ignored);
  socket->close(ignored);
  state->clients.erase(socket);
}

asio::awaitable<void> accept_loop(std::shared_ptr<MetricsServer::State> state) {
  auto executor = co_await asio::this_coro::executor;
  for (;;) {
    auto socket = std::make_shared<tcp::socket>(executor);
    error_code ec;
    co_await state->acceptor.async_accept(*socket, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !state->acceptor.is_open()) co_return;
    if (ec) {
      co_await net::back_off_after_accept_error("metrics", ec, state->accept_failures);
      continue;
    }
    if (state->clients.size() >= state->options.max_clients) {
      socket->close(ec);  // a scraper retries at its next interval
      continue;
    }
    state->clients.insert(socket);
    asio::co_spawn(executor, session(state, socket), asio::detached);
  }
}

}  // namespace

std::string respond(std::string_view head, const MetricsServer::Render& render) {
  // Request line: METHOD SP request-target SP HTTP-version (RFC 9112 section 3).
  const auto line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.substr(sp2 + 1).substr(0, 5) != "HTTP/")
    return message("400 Bad Request", "text/plain", "not an HTTP request\n");
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));  // a scraper's query parameters change nothing
  if (method != "GET" || target != "/metrics")
    return message("404 Not Found", "text/plain", "snigated serves GET /metrics only\n");
  return message("200 OK", kContentType, render());
}

std::unique_ptr<MetricsServer> MetricsServer::start(asio::io_context& io,
                                                    const tcp::endpoint& listen, Render render,
                                                    std::string& error, ServerOptions options) {
  auto state = std::make_shared<State>(io, std::move(render), options);
  error_code ec;
  state->acceptor.open(listen.protocol(), ec);
  if (!ec) state->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) state->acceptor.bind(listen, ec);
  if (!ec) state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    const std::string host = listen.address().to_string();
    error = fmt::format("[metrics] cannot listen on {}:{}: {}; pick a free port or stop what "
                        "holds it",
                        listen.address().is_v6() ? "[" + host + "]" : host, listen.port(),
                        ec.message());
    return nullptr;
  }
  asio::co_spawn(io, accept_loop(state), asio::detached);
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(state)));
}

MetricsServer::~MetricsServer() {
  error_code ignored;
  state_->acceptor.close(ignored);
  for (const auto& socket : state_->clients) socket->close(ignored);
}

tcp::endpoint MetricsServer::local_endpoint() const {
  error_code ignored;
  return state_->acceptor.local_endpoint(ignored);
}

}  // namespace snigate::metrics
