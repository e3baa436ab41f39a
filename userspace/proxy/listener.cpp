#include "proxy/listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "net/accept_backoff.h"
#include "net/nonblocking_socket.h"
#include "net/ready_wait.h"
#include "net/tcp_inq.h"

namespace snigate::proxy {

namespace asio = boost::asio;
using boost::system::error_code;
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
// Seconds of silence after which the kernel hands a connection over anyway (tcp(7)); 1, as
// nginx's `deferred` and HAProxy's `defer-accept` use: a silent client then meets
// preread_timeout as without the option, a second later.
using defer_accept_seconds = asio::detail::socket_option::integer<IPPROTO_TCP, TCP_DEFER_ACCEPT>;

Listener::Listener(asio::io_context& io, std::string name, const tcp::endpoint& endpoint,
                   bool defer_accept, OnAccept on_accept)
    : acceptor_(io), configured_(endpoint), name_(std::move(name)), on_accept_(std::move(on_accept)) {
  try {
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.set_option(reuse_port(true));
    if (endpoint.address().is_v6()) acceptor_.set_option(asio::ip::v6_only(false));
    // Accepted sockets inherit TCP_NODELAY from the listening one on Linux: one setsockopt
    // here instead of one per connection.
    acceptor_.set_option(tcp::no_delay(true));
    // TCP_INQ likewise: each read says whether the client's stream has more (net/tcp_inq.h);
    // without it (before Linux 4.18) the relay reads once more, as it did.
    error_code no_hint;
    acceptor_.set_option(net::tcp_inq(true), no_hint);
    acceptor_.set_option(defer_accept_seconds(defer_accept ? 1 : 0));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    // accept4 is called before any wait: it must return EAGAIN, not block, when none is pending.
    acceptor_.non_blocking(true);
    if (!endpoint.address().is_unspecified()) local_ = acceptor_.local_endpoint();
  } catch (const boost::system::system_error& e) {
    throw boost::system::system_error(
        e.code(), "listener " + name_ + ": cannot listen (is the address local and the port "
                  "free? ports below 1024 need CAP_NET_BIND_SERVICE)");
  }
}

void Listener::start() {
  asio::co_spawn(acceptor_.get_executor(), [self = shared_from_this()] { return self->loop(); },
                 asio::detached);
}

void Listener::set_defer_accept(bool on) {
  asio::post(acceptor_.get_executor(), [self = shared_from_this(), on] {
    error_code ignored;  // closed meanwhile: nothing left to defer
    self->acceptor_.set_option(defer_accept_seconds(on ? 1 : 0), ignored);
  });
}

void Listener::stop(std::function<void()> closed) {
  asio::post(acceptor_.get_executor(), [self = shared_from_this(), closed = std::move(closed)] {
    error_code ignored;
    self->acceptor_.close(ignored);
    if (closed) closed();
  });
}

asio::awaitable<void> Listener::loop() {
  const std::string who = "listener " + name_;
  unsigned this_turn = 0;  // connections accepted since this coroutine last gave way
  while (acceptor_.is_open()) {
    // accept4: born non-blocking (net/nonblocking_socket.h). The session starts at once and
    // reads its hello before the next is accepted (net/co_spawn_now.h): a burst accepted at
    // once would hold all its preread buffers together, and the heap keeps that peak (16 at a
    // time cost ~300 B of RSS per idle connection at 1,000 connections).
    Accepted a{tcp::socket(acceptor_.get_executor()), {}, local_};
    error_code ec;
    net::accept_nonblocking(acceptor_, a.socket, a.peer, ec);
    if (!ec) {
      on_accept_(std::move(a), name_);
      // A long burst gives way now and then, so the event loop's relays are not held up; a
      // post costs the next turn an epoll_wait(0), so not after every connection.
      if (++this_turn % kAcceptsPerTurn == 0)
        co_await asio::post(acceptor_.get_executor(), asio::use_awaitable);
      continue;
    }
    // Reset by its client while queued: the next one, as asio's accept does.
    if (ec == asio::error::connection_aborted) continue;
    if (!acceptor_.is_open()) co_return;
    // None left. asio's epoll registration is edge-triggered: after this EAGAIN, the next
    // connection wakes a wait that costs no system call (net/ready_wait.h).
    if (ec == asio::error::would_block) {
      this_turn = 0;
      co_await net::async_wait_after_would_block(acceptor_, tcp::acceptor::wait_read,
                                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      if (!ec) continue;
    }
    co_await net::back_off_after_accept_error(who, ec, accept_failures_);
  }
}

}  // namespace snigate::proxy
