#pragma once
// A deadline on asynchronous work: when it passes, an action of the caller's ends the work
// (closes or cancels the socket it waits on). Every bounded wait of the daemon goes through
// it, because the one subtle part is easy to get wrong: Asio may already have queued the
// timer's handler when the work completes, and cancel() does not stop a queued handler. The
// deadline's small shared state tells such a late handler that it was cancelled, re-armed or
// destroyed, so the action never reaches a socket that has moved on (or is gone), and the
// action may hold plain references to what outlives the Deadline.
//
// Single-threaded: arm, cancel and the action run on the executor's one thread.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace snigate::net {

class Deadline {
 public:
  using Clock = boost::asio::steady_timer::clock_type;

  explicit Deadline(const boost::asio::any_io_executor& ex);
  ~Deadline();  // cancels
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  // `on_expiry` runs once when `at` (or `timeout` from now) passes, unless cancel(), another
  // arm or the destructor comes first. Arming again replaces the earlier deadline.
  void arm_at(Clock::time_point at, std::function<void()> on_expiry);
  void arm(Clock::duration timeout, std::function<void()> on_expiry) {
    arm_at(Clock::now() + timeout, std::move(on_expiry));
  }
  void cancel();
  // Whether the action of the last arm ran (it stays true after cancel()).
  bool expired() const { return state_->expired; }

 private:
  struct State {
    std::uint64_t armed = 0;  // which arm the pending handler may act for
    bool expired = false;
  };
  boost::asio::steady_timer timer_;
  std::shared_ptr<State> state_;
};

}  // namespace snigate::net
