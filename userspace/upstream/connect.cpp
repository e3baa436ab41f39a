#include "upstream/connect.h"

#include <netinet/in.h>
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
#include "net/prefix.h"
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
  Attempt(const asio::any_io_executor& ex, net::Deadline::Clock::time_point until)
      : resolver(ex), socket(ex), deadline(ex), wake(ex), until(until) {}
  tcp::resolver resolver;
  tcp::socket socket;
  net::Deadline deadline;
  // Expired by whichever comes first, the lookup or the deadline: Asio's resolver runs
  // getaddrinfo on a thread and cannot abort it, so the attempt must not wait for it.
  asio::steady_timer wake;
  bool resolved = false;
  error_code resolve_error;
  tcp::resolver::results_type results;
  net::Deadline::Clock::time_point until;
  bool armed = false;
  bool source_failed = false;  // the error came from binding the server's source address

  // Armed before the first wait only: a connect to a local backend that completes inside
  // connect(2), with its first bytes sent at once, waits for nothing and sets no timer (a
  // timerfd_settime to arm and one to disarm whenever it is the loop's earliest timer).
  void arm_deadline() {
    if (armed) return;
    armed = true;
    deadline.arm_at(until, [this] {
      resolver.cancel();
      wake.expires_after(std::chrono::seconds(0));
      error_code ignored;
      // Closing (not just cancelling) ends the connect under way; connect_one tries no more.
      socket.close(ignored);
    });
  }
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
  a->arm_deadline();
  error_code ignored;
  co_await a->wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  if (a->deadline.expired() || !a->resolved) co_return asio::error::timed_out;
  if (a->resolve_error) co_return a->resolve_error;
  for (const auto& r : a->results) endpoints.push_back(r.endpoint());
  if (endpoints.empty()) co_return asio::error::host_not_found;
  co_return error_code{};
}

// Whether a send(2) of what the connection sends first went out, would block, or failed; a
// failure on a socket still connecting is the connect's own error (ECONNREFUSED, ...): the
// error getsockopt(SO_ERROR) would read, and nothing is sent.
struct FirstSend {
  bool would_block = false;
  error_code error;
};
FirstSend send_first(tcp::socket& socket, std::span<const std::uint8_t> first, std::size_t& sent) {
  ssize_t n;
  do {
    n = ::send(socket.native_handle(), first.data(), first.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) {
    sent = static_cast<std::size_t>(n);
    return {};
  }
  if (errno == EAGAIN) return {true, {}};
  return {false, error_code(errno, boost::system::system_category())};
}

// connect(2), then a wait for writability and SO_ERROR: what asio's async_connect does, less
// the poll(2) it adds before reading SO_ERROR (one system call per connection). With bytes to
// send first, their send(2) reports the connect's error instead, one system call fewer.
//
// To a local backend (`local`: loopback or this host's own address) the send comes before any
// wait: there the SYN, SYN-ACK and ACK all pass inside connect(2) (loopback's transmit runs the
// receive softirq when it re-enables bottom halves, and the SYN-ACK waits in the socket's
// backlog until connect's release_sock), so connect answers EINPROGRESS on a socket that is
// already established. Sending at once saves the wait's EPOLL_CTL_MOD (EPOLLOUT), an event-loop
// round trip and its epoll_wait. When the softirq was deferred (ksoftirqd) or the backend's
// accept queue is full, the send finds SYN_SENT and answers EAGAIN: that proves the socket
// unwritable, so the same wait follows (net/ready_wait.h). To a remote backend the send would
// be a wasted system call per connection: the wait comes first, as before.
asio::awaitable<error_code> connect_socket(const std::shared_ptr<Attempt>& a,
                                           const tcp::endpoint& endpoint, bool local,
                                           std::span<const std::uint8_t> first,
                                           std::size_t& sent) {
  tcp::socket& socket = a->socket;
  sent = 0;
  const auto size = static_cast<socklen_t>(endpoint.size());
  if (::connect(socket.native_handle(), endpoint.data(), size) == 0) {
    if (first.empty()) co_return error_code{};
  } else {
    // EINTR: the connection goes on in the background (connect(2)), as with EINPROGRESS.
    if (errno != EINPROGRESS && errno != EINTR)
      co_return error_code(errno, boost::system::system_category());
    if (local && !first.empty()) {
      const FirstSend s = send_first(socket, first, sent);
      if (!s.would_block) co_return s.error;
    }
    a->arm_deadline();
    error_code ec;
    // In progress: its end raises an edge (the wait's one system call adds EPOLLOUT).
    co_await net::async_wait_after_would_block(socket, tcp::socket::wait_write,
                                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return ec;  // closed by the deadline: operation_aborted
  }
  if (!first.empty()) {
    const FirstSend s = send_first(socket, first, sent);
    // A full buffer is no verdict on the connect: SO_ERROR gives it.
    if (!s.would_block) co_return s.error;
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  co_return error_code(err, boost::system::system_category());
}

// Binds to `source` with port 0 and IP_BIND_ADDRESS_NO_PORT: the port is then chosen by
// connect(2) against the whole 4-tuple, as without a bind, instead of one port reserved per
// socket whatever its destination (which would cap the source at one range for all servers).
error_code bind_source(tcp::socket& socket, const asio::ip::address& source) {
  const int one = 1;
  if (::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                   sizeof one) != 0)
    return error_code(errno, boost::system::system_category());
  error_code ec;
  socket.bind(tcp::endpoint(source, 0), ec);
  return ec;
}

asio::awaitable<error_code> connect_one(const std::shared_ptr<Attempt>& a,
                                        const UpstreamPool::Pick& pick, tcp::endpoint& remote,
                                        std::span<const std::uint8_t> first, std::size_t& sent) {
  const config::ServerConfig& server = *pick.server;
  error_code ec;
  // A literal, parsed by the pool, is one endpoint: no vector to allocate for it.
  tcp::endpoint literal;
  std::vector<tcp::endpoint> resolved;
  std::span<const tcp::endpoint> endpoints;
  if (pick.address) {
    literal = tcp::endpoint(*pick.address, server.port);
    endpoints = {&literal, 1};
  } else if (ec = co_await resolve(a, server, resolved); ec) {
    co_return ec;
  } else {
    endpoints = resolved;
  }
  // Each address in turn, as asio::async_connect would, but on a socket born non-blocking
  // (net/nonblocking_socket.h): no ioctl to set O_NONBLOCK, no EPOLL_CTL_DEL at its close.
  for (const auto& endpoint : endpoints) {
    if (a->deadline.expired()) break;
    if (server.source && server.source->is_v4() != endpoint.address().is_v4()) {
      if (!ec) ec = asio::error::address_family_not_supported;
      continue;
    }
    error_code ignored;
    a->socket.close(ignored);
    net::open_nonblocking(a->socket, endpoint.protocol(), ec);
    if (ec) continue;
    if (server.source && (ec = bind_source(a->socket, *server.source))) {
      a->source_failed = true;  // the same source would fail towards every address
      co_return ec;
    }
    a->socket.set_option(net::tcp_inq(true), ignored);  // the relay's reads: net/tcp_inq.h
    // A name resolved to loopback is local too; the pool knows the host's other addresses.
    const bool local = pick.own_address || net::unmap(endpoint.address()).is_loopback();
    ec = co_await connect_socket(a, endpoint, local, first, sent);
    if (!ec && !a->deadline.expired()) {
      remote = endpoint;
      co_return ec;
    }
  }
  if (a->deadline.expired()) co_return asio::error::timed_out;
  co_return ec;
}

}  // namespace

bool no_local_port(const ConnectAttempt& attempt) {
  return !attempt.at_source &&
         attempt.error == error_code(EADDRNOTAVAIL, boost::system::system_category());
}

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
    // Started before the deadline is computed, so a timed-out attempt never reports less than
    // connect_timeout.
    auto started = std::chrono::steady_clock::now();
    auto attempt = std::make_shared<Attempt>(ex, started + backend.connect_timeout);
    tcp::endpoint remote;
    error_code ec = co_await connect_one(attempt, *pick, remote, first, result.sent);
    attempt->deadline.cancel();
    result.attempts.push_back({pick->server->text.empty() ? config::address(*pick->server)
                                                         : pick->server->text,
                               pick->index, ec, attempt->source_failed,
                               std::chrono::steady_clock::now() - started});
    if (!ec) {
      pool.report_success(pick->index);
      result.socket.emplace(std::move(attempt->socket));
      result.remote = remote;
      co_return result;
    }
    // Marking every server down for fail_timeout would turn a moment's port shortage into
    // an outage of the whole backend.
    if (!no_local_port(result.attempts.back())) pool.report_failure(pick->index);
  }
  co_return result;
}

}  // namespace snigate::upstream
