#pragma once
// Starts a coroutine at once, on the caller's stack, up to its first suspension: asio's
// co_spawn without the post it begins with (Boost 1.74's co_spawn_entry_point).
//
// Why: each post made by a handler puts work behind the event loop's reactor task, so the
// scheduler's next turn polls epoll with a zero timeout before running it. The listener
// posted twice per connection (co_spawn, then its own yield): one epoll_wait(0) per short
// connection, which also handed out the accepted socket's registration edge, stale once the
// session read its ClientHello. Started here instead, the session reads that hello before the
// next epoll_wait, which then finds the socket empty and reports nothing for it.
//
// The caller must be on the executor's own thread (a handler of its event loop), as
// asio::dispatch would require; exceptions escaping the coroutine are dropped, as
// asio::detached drops them.
#include <boost/version.hpp>

// awaitable_handler is asio's internal; read its use in co_spawn before allowing another Boost.
static_assert(BOOST_VERSION == 107400,
              "net/co_spawn_now.h mirrors Boost 1.74's co_spawn: check it against this Boost's "
              "boost/asio/impl/co_spawn.hpp");

#include <type_traits>
#include <utility>  // Boost 1.74 awaitable.hpp uses std::exchange without including it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace snigate::net {

// Runs `f()` (which returns an awaitable<void>); `f` lives, with what it holds, until that
// coroutine ends, as co_spawn keeps its function object.
template <typename Executor, typename F>
void co_spawn_now(const Executor& ex, F f) {
  using AwaitableExecutor = typename std::invoke_result_t<F&>::executor_type;
  auto entry = [](F f) -> boost::asio::awaitable<void, AwaitableExecutor> {
    try {
      co_await f();
    } catch (...) {  // see above: as asio::detached
    }
  };
  boost::asio::detail::awaitable_handler<AwaitableExecutor, void>(entry(std::move(f)),
                                                                  AwaitableExecutor(ex))
      .launch();
}

}  // namespace snigate::net
