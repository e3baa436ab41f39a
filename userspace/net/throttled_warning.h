#pragma once
// A warning that may fire on every connection (descriptors or max_connections exhausted) is
// said at most once per interval, with how many times it stood for: a flood of refusals must
// not become a flood of log lines.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>

namespace snigate::net {

class ThrottledWarning {
 public:
  explicit ThrottledWarning(std::chrono::steady_clock::duration interval = std::chrono::seconds(10))
      : interval_(interval) {}

  // Counts one occurrence; when a line is due, returns how many occurrences it stands for
  // (this one and those held back since the last line). Thread-safe.
  std::optional<std::uint64_t> due() {
    std::lock_guard lock(mu_);
    ++held_;
    const auto now = std::chrono::steady_clock::now();
    if (said_ && now - *said_ < interval_) return std::nullopt;
    said_ = now;
    return std::exchange(held_, 0);
  }

 private:
  std::chrono::steady_clock::duration interval_;
  std::mutex mu_;
  std::optional<std::chrono::steady_clock::time_point> said_;
  std::uint64_t held_ = 0;
};

}  // namespace snigate::net
