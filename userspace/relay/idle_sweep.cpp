#include "relay/idle_sweep.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/execution_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace snigate::relay::detail {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

class IdleSweep final : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;
  explicit IdleSweep(asio::execution_context& context) : service(context) {}

  void add(Swept& s, const asio::any_io_executor& ex) {
    s.sweep_ = this;
    s.next_ = head_;
    if (head_) head_->prev_ = &s;
    head_ = &s;
    if (!timer_ && !shut_down_) timer_.emplace(ex);
    if (auto tick = tick_for(s.idle_timeout()); !armed_ || tick < tick_) arm(tick);
  }

  void remove(Swept& s) {
    if (s.prev_)
      s.prev_->next_ = s.next_;
    else
      head_ = s.next_;
    if (s.next_) s.next_->prev_ = s.prev_;
    s.prev_ = s.next_ = nullptr;
    s.sweep_ = nullptr;
    // Nothing to watch: no pending wait keeps the event loop running.
    if (!head_ && timer_ && armed_) {
      armed_ = false;
      ++generation_;
      timer_->cancel();
    }
  }

 private:
  static std::chrono::milliseconds tick_for(std::chrono::milliseconds idle_timeout) {
    return std::clamp<std::chrono::milliseconds>(idle_timeout / 4, 10ms, 1000ms);
  }

  void shutdown() override {
    shut_down_ = true;
    timer_.reset();
  }

  void arm(std::chrono::milliseconds tick) {
    if (!timer_) return;
    tick_ = tick;
    armed_ = true;
    ++generation_;
    timer_->expires_after(tick);
    timer_->async_wait([this, generation = generation_](const error_code& ec) {
      // A wait replaced by a shorter one, or cancelled, is not this sweep's.
      if (ec || shut_down_ || generation != generation_) return;
      armed_ = false;
      sweep();
    });
  }

  void sweep() {
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::pair<Swept*, std::shared_ptr<void>>> due;
    auto tick = 1000ms;
    for (Swept* s = head_; s; s = s->next_) {
      tick = std::min(tick, tick_for(s->idle_timeout()));
      if (s->due(now)) due.emplace_back(s, s->hold());
    }
    for (auto& [s, held] : due) s->swept_end();
    if (head_) arm(tick);
  }

  Swept* head_ = nullptr;
  std::optional<asio::steady_timer> timer_;
  std::chrono::milliseconds tick_{1000};
  std::uint64_t generation_ = 0;
  bool armed_ = false;
  bool shut_down_ = false;
};

void Swept::list(const asio::any_io_executor& ex) {
  asio::use_service<IdleSweep>(asio::query(ex, asio::execution::context)).add(*this, ex);
}

void Swept::unlist() {
  if (sweep_) sweep_->remove(*this);
}

}  // namespace snigate::relay::detail
