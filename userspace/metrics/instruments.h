#pragma once
// The metric objects the data path updates: relaxed atomics, one object per label set,
// looked up once per connection (or once per configuration generation) and then only
// incremented. Relaxed order is enough: a scrape wants each figure, not a moment where all of
// them agree.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace snigate::metrics {

class Counter {
 public:
  void add(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void add(std::int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  void sub(std::int64_t n = 1) { value_.fetch_sub(n, std::memory_order_relaxed); }
  std::int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

// Upper bounds in seconds, from a loopback connect (~0.1 ms) to a connect_timeout or a slow
// client's preread (seconds).
inline constexpr std::array<double, 14> kLatencyBounds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 10};

struct HistogramSnapshot {
  std::array<std::uint64_t, kLatencyBounds.size()> cumulative{};  // observations <= bound
  std::uint64_t count = 0;
  double sum_seconds = 0;
};

// A latency histogram over kLatencyBounds: a bucket counter and the sum in nanoseconds, so an
// observation is two relaxed adds.
class Histogram {
 public:
  void observe(std::chrono::nanoseconds took);
  HistogramSnapshot snapshot() const;

 private:
  std::array<std::atomic<std::uint64_t>, kLatencyBounds.size() + 1> buckets_{};  // last: +Inf
  std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace snigate::metrics
