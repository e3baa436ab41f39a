#include "net/deadline.h"

namespace snigate::net {

Deadline::Deadline(const boost::asio::any_io_executor& ex)
    : timer_(ex), state_(std::make_shared<State>()) {}

Deadline::~Deadline() { cancel(); }

void Deadline::arm_at(Clock::time_point at, std::function<void()> on_expiry) {
  const auto armed = ++state_->armed;
  state_->expired = false;
  timer_.expires_at(at);
  timer_.async_wait([state = state_, armed, action = std::move(on_expiry)](
                        const boost::system::error_code& ec) {
    // Cancelled in time (ec), or the handler was queued before a cancel, a new arm or the
    // destructor that it can no longer act for.
    if (ec || state->armed != armed) return;
    state->expired = true;
    action();
  });
}

void Deadline::cancel() {
  ++state_->armed;
  timer_.cancel();
}

}  // namespace snigate::net
