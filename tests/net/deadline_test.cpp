// net::Deadline: the action runs when the deadline passes, and never once the deadline was
// cancelled, re-armed or destroyed, even when Asio had already queued the timer's handler
// (the case every hand-rolled deadline had to guard with a "still running" flag of its own).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "net/deadline.h"

namespace snigate::net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(Deadline, ActionRunsWhenItPasses) {
  asio::io_context io;
  Deadline d(io.get_executor());
  int ran = 0;
  d.arm(1ms, [&] { ++ran; });
  EXPECT_FALSE(d.expired());
  io.run();
  EXPECT_EQ(ran, 1);
  EXPECT_TRUE(d.expired());
  d.cancel();
  EXPECT_TRUE(d.expired());  // still says why the work ended
}

TEST(Deadline, CancelledInTimeNeverActs) {
  asio::io_context io;
  Deadline d(io.get_executor());
  bool ran = false;
  d.arm(1h, [&] { ran = true; });
  d.cancel();
  io.run();  // returns at once: nothing left to wait for
  EXPECT_FALSE(ran);
  EXPECT_FALSE(d.expired());
}

// The race: the deadline has passed and its handler is queued behind `work`, which ends
// (cancels, re-arms or destroys the deadline) before the handler runs. A plain timer's
// handler then still sees success; the deadline's action must not run. `witness`, a plain
// timer due at the same instant and cancelled by the same step, shows the race happened
// (its handler saw success despite the cancel), so the case cannot pass without it.
template <class Step>
void late_handler_case(Step step) {
  asio::io_context io;
  auto d = std::make_unique<Deadline>(io.get_executor());
  asio::steady_timer witness(io);
  const auto due = Deadline::Clock::now() - 1ms;
  bool acted = false, witness_saw_success = false;
  d->arm_at(due, [&] { acted = true; });
  witness.expires_at(due);
  witness.async_wait([&](const boost::system::error_code& ec) { witness_saw_success = !ec; });
  asio::post(io, [&] {
    witness.cancel();
    step(d, io);
  });
  io.run();
  ASSERT_TRUE(witness_saw_success) << "the handlers were not queued before the step: no race";
  EXPECT_FALSE(acted);
}

TEST(Deadline, HandlerQueuedBeforeCancelDoesNotAct) {
  late_handler_case([](std::unique_ptr<Deadline>& d, asio::io_context&) { d->cancel(); });
}

TEST(Deadline, HandlerQueuedBeforeRearmDoesNotActForTheNewArm) {
  bool second = false;
  late_handler_case([&](std::unique_ptr<Deadline>& d, asio::io_context& io) {
    d->arm(1h, [&] { second = true; });
    // Runs after the late handler (queued behind it), so io.run() need not wait the hour.
    asio::post(io, [&] { d->cancel(); });
  });
  EXPECT_FALSE(second);
}

TEST(Deadline, HandlerQueuedBeforeDestructionDoesNotAct) {
  late_handler_case([](std::unique_ptr<Deadline>& d, asio::io_context&) { d.reset(); });
}

}  // namespace
}  // namespace snigate::net
