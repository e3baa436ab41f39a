#include "upstream/connect.h"

#include <sys/socket.h>

#include <cerrno>
#include <memory>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "config/server.h"
#include "net/deadline.h"
#include "net/nonblocking_socket.h"
#include "net/ready_wait.h"
#include "net/tcp_inq.h"

namespace snigate::upstream {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

// What the resolver's handler may touch: it can run after the attempt has finished, so it
// holds the state rather than the coroutine frame.
struct Attempt {
  explicit Attempt(const asio::any_io_executor& ex)
      : resolver(ex), socket(ex), deadline(ex), wake(ex) {}
  tcp::resolver resolver;
  tcp::socket socket;
  net::Deadline deadline;
  // Expired by whichever comes first, the lookup or the deadline: Asio's resolver runs
  // getaddrinfo on a thread and cannot abort it, so the attempt must not wait for it.
  asio::steady_timer wake;
  bool resolved = false;
  error_code resolve_error;
  tcp::resolver::results_type results;
};

asio::awaitable<error_code> resolve(const std::shared_ptr<Attempt>& a,
                                    const config::ServerConfig& server,
                                    std::vector<tcp::endpoint>& endpoints) {
  a->wake.expires_at(asio::steady_timer::time_point::max());
  a->resolver.async_resolve(server.host, std::to_string(server.port),
                            [a](error_code ec, tcp::resolver::results_type results) {
                              a->resolved = true;
                              a->resolve_error = ec;
                              a->results = std::move(results);
                              a->wake.expires_after(std::chrono::seconds(0));
                            });
  error_code ignored;
  co_await a->wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  if (a->deadline.expired() || !a->resolved) co_return asio::error::timed_out;
  if (a->resolve_error) co_return a->resolve_error;
  for (const auto& r : a->results) endpoints.push_back(r.endpoint());
  if (endpoints.empty()) co_return asio::error::host_not_found;
  co_return error_code{};
}

// connect(2), then a wait for writability and SO_ERROR: what asio's async_connect does, less
// the poll(2) it adds before reading SO_ERROR (one system call per connection). With bytes to
// send first, their send(2) reports the connect's error instead (it fails with the error
// getsockopt would have read, and nothing is sent), one system call fewer.
asio::awaitable<error_code> connect_socket(tcp::socket& socket, const tcp::endpoint& endpoint,
                                           std::span<const std::uint8_t> first,
                                           std::size_t& sent) {
  sent = 0;
  const auto size = static_cast<socklen_t>(endpoint.size());
  if (::connect(socket.native_handle(), endpoint.data(), size) == 0) {
    if (first.empty()) co_return error_code{};
  } else {
    // EINTR: the connection goes on in the background (connect(2)), as with EINPROGRESS.
    if (errno != EINPROGRESS && errno != EINTR)
      co_return error_code(errno, boost::system::system_category());
    error_code ec;
    // In progress: its end raises an edge (the wait's one system call adds EPOLLOUT).
    co_await net::async_wait_after_would_block(socket, tcp::socket::wait_write,
                                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return ec;  // closed by the deadline: operation_aborted
  }
  if (!first.empty()) {
    ssize_t n;
    do {
      n = ::send(socket.native_handle(), first.data(), first.size(), MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
      sent = static_cast<std::size_t>(n);
      co_return error_code{};
    }
    // A full buffer is no verdict on the connect: SO_ERROR gives it.
    if (errno != EAGAIN) co_return error_code(errno, boost::system::system_category());
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  co_return error_code(err, boost::system::system_category());
}

asio::awaitable<error_code> connect_one(const std::shared_ptr<Attempt>& a,
                                        const config::ServerConfig& server,
                                        tcp::endpoint& remote,
                                        std::span<const std::uint8_t> first, std::size_t& sent) {
  error_code ec;
  auto literal = asio::ip::make_address(server.host, ec);
  std::vector<tcp::endpoint> endpoints;
  if (!ec) {
    endpoints.emplace_back(literal, server.port);
  } else if (ec = co_await resolve(a, server, endpoints); ec) {
    co_return ec;
  }
  // Each address in turn, as asio::async_connect would, but on a socket born non-blocking
  // (net/nonblocking_socket.h): no ioctl to set O_NONBLOCK, no EPOLL_CTL_DEL at its close.
  for (const auto& endpoint : endpoints) {
    if (a->deadline.expired()) break;
    error_code ignored;
    a->socket.close(ignored);
    net::open_nonblocking(a->socket, endpoint.protocol(), ec);
    if (ec) continue;
    a->socket.set_option(net::tcp_inq(true), ignored);  // the relay's reads: net/tcp_inq.h
    ec = co_await connect_socket(a->socket, endpoint, first, sent);
    if (!ec && !a->deadline.expired()) {
      remote = endpoint;
      co_return ec;
    }
  }
  if (a->deadline.expired()) co_return asio::error::timed_out;
  co_return ec;
}

}  // namespace

asio::awaitable<ConnectResult> connect_upstream(UpstreamPool& pool,
                                                const config::BackendConfig& backend,
                                                std::span<const std::uint8_t> first) {
  auto ex = co_await asio::this_coro::executor;
  ConnectResult result;
  std::vector<std::size_t> tried;
  for (unsigned n = 0; n < backend.max_tries; ++n) {
    auto pick = pool.pick(tried);
    if (!pick) break;
    tried.push_back(pick->index);
    auto attempt = std::make_shared<Attempt>(ex);
    // Started before the deadline is armed, so a timed-out attempt never reports less than
    // connect_timeout.
    auto started = std::chrono::steady_clock::now();
    attempt->deadline.arm(backend.connect_timeout, [&a = *attempt] {
      a.resolver.cancel();
      a.wake.expires_after(std::chrono::seconds(0));
      error_code ignored;
      // Closing (not just cancelling) ends the connect under way; connect_one tries no more.
      a.socket.close(ignored);
    });
    tcp::endpoint remote;
    error_code ec = co_await connect_one(attempt, *pick->server, remote, first, result.sent);
    attempt->deadline.cancel();
    result.attempts.push_back({pick->server->text.empty() ? config::address(*pick->server)
                                                         : pick->server->text,
                               pick->index, ec, std::chrono::steady_clock::now() - started});
    if (!ec) {
      pool.report_success(pick->index);
      result.socket.emplace(std::move(attempt->socket));
      result.remote = remote;
      co_return result;
    }
    pool.report_failure(pick->index);
  }
  co_return result;
}

}  // namespace snigate::upstream
