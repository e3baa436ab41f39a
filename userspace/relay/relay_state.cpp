#include "relay/relay_state.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace snigate::relay::detail {

namespace asio = boost::asio;
using boost::system::error_code;

bool is_reset(const error_code& ec) {
  return ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted;
}

Link::Link(tcp::socket& client, tcp::socket& upstream, const Options& options,
           Counters& counters)
    : client_(client),
      upstream_(upstream),
      options_(options),
      counters_(counters),
      timer_(client.get_executor()),
      last_activity_(std::chrono::steady_clock::now()) {}

Direction Link::client_to_upstream() {
  return {client_, upstream_, counters_.client_to_upstream, Side::Client, Side::Upstream};
}

Direction Link::upstream_to_client() {
  return {upstream_, client_, counters_.upstream_to_client, Side::Upstream, Side::Client};
}

void Link::eof(const Direction& d) {
  error_code ignored;
  d.to.shutdown(tcp::socket::shutdown_send, ignored);
}

void Link::finish(End end, std::string detail) {
  if (ended_) return;
  ended_ = true;
  result_.end = end;
  result_.detail = std::move(detail);
}

void Link::close_both(bool reset_client, bool reset_upstream) {
  error_code ignored;
  // SO_LINGER {1, 0}: close() sends RST instead of FIN (tcp(7)), so the peer sees the reset.
  if (reset_client && client_.is_open()) client_.set_option(tcp::socket::linger(true, 0), ignored);
  if (reset_upstream && upstream_.is_open())
    upstream_.set_option(tcp::socket::linger(true, 0), ignored);
  client_.close(ignored);
  upstream_.close(ignored);
}

void Link::failed(Side side, const error_code& ec) {
  if (ended_) {
    close_both(false, false);
    return;
  }
  if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
    finish(End::Aborted);
    close_both(false, false);
  } else if (is_reset(ec)) {
    finish(side == Side::Client ? End::ClientReset : End::UpstreamReset);
    close_both(side == Side::Upstream, side == Side::Client);
  } else {
    finish(End::Error, std::string(side == Side::Client ? "client: " : "upstream: ") +
                           ec.message());
    close_both(false, false);
  }
}

void Link::direction_done() {
  ++done_;
  timer_.cancel();
}

asio::awaitable<Result> Link::run(Pump pump) {
  auto ex = co_await asio::this_coro::executor;
  auto on_done = [this](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        finish(End::Error, x.what());
      }
      close_both(false, false);
    }
    direction_done();
  };
  asio::co_spawn(ex, pump(*this, client_to_upstream()), on_done);
  asio::co_spawn(ex, pump(*this, upstream_to_client()), on_done);
  while (done_ < 2) {
    timer_.expires_at(last_activity_ + options_.idle_timeout);
    error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (done_ == 2) break;
    if (!ec && std::chrono::steady_clock::now() >= last_activity_ + options_.idle_timeout) {
      finish(End::IdleTimeout);
      close_both(false, false);
      // The directions now complete with operation_aborted; wait for both.
      last_activity_ = std::chrono::steady_clock::now() + std::chrono::hours(24);
    }
  }
  finish(End::Clean);
  co_return result_;
}

}  // namespace snigate::relay::detail
