// net::co_spawn_now: the coroutine runs before the call returns, up to its first wait, and
// then goes on as a co_spawn'd one would (its function object alive until it ends, an
// exception dropped as asio::detached drops it).
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "net/co_spawn_now.h"

namespace snigate::net {
namespace {

namespace asio = boost::asio;

TEST(CoSpawnNow, RunsUpToItsFirstWaitBeforeReturning) {
  asio::io_context io;
  int step = 0;
  int seen_on_return = -1;
  asio::post(io, [&] {
    co_spawn_now(io.get_executor(), [&]() -> asio::awaitable<void> {
      step = 1;
      co_await asio::post(io, asio::use_awaitable);
      step = 2;
    });
    seen_on_return = step;
  });
  io.run();
  EXPECT_EQ(seen_on_return, 1);
  EXPECT_EQ(step, 2);
}

TEST(CoSpawnNow, KeepsItsFunctionObjectUntilTheEnd) {
  asio::io_context io;
  auto held = std::make_shared<int>(7);
  std::weak_ptr<int> watch = held;
  int read = 0;
  co_spawn_now(io.get_executor(), [held = std::move(held), &io, &read]() -> asio::awaitable<void> {
    co_await asio::post(io, asio::use_awaitable);
    read = *held;
  });
  EXPECT_FALSE(watch.expired());  // suspended: what the function object holds is alive
  io.run();
  EXPECT_EQ(read, 7);
  EXPECT_TRUE(watch.expired());
}

TEST(CoSpawnNow, DropsAnExceptionAsDetachedDoes) {
  asio::io_context io;
  co_spawn_now(io.get_executor(), [&]() -> asio::awaitable<void> {
    co_await asio::post(io, asio::use_awaitable);
    throw std::runtime_error("dropped");
  });
  EXPECT_NO_THROW(io.run());
}

}  // namespace
}  // namespace snigate::net
