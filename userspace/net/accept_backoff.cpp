#include "net/accept_backoff.h"

#include <chrono>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace snigate::net {

namespace asio = boost::asio;

asio::awaitable<void> back_off_after_accept_error(std::string_view who,
                                                  const boost::system::error_code& ec,
                                                  ThrottledWarning& warning) {
  constexpr auto pause = std::chrono::milliseconds(100);
  if (auto times = warning.due())
    spdlog::warn("{}: accept failed: {} ({} time(s) since the last such line); pausing {}ms "
                 "between tries, clients wait in the backlog",
                 who, ec.message(), *times, pause.count());
  asio::steady_timer timer(co_await asio::this_coro::executor, pause);
  boost::system::error_code ignored;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

}  // namespace snigate::net
