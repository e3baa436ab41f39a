#pragma once
// Daemon-wide counters, updated lock-free on the data path (per-backend ones under a short
// lock once per connection) and read as a snapshot by the control socket.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "daemon/end_reason.h"

namespace snigate::daemon {

struct BackendStats {
  std::uint64_t connections = 0;
  std::uint64_t failures = 0;  // connections that ended refused (no upstream reachable)
  std::uint64_t bytes_to_backend = 0;
  std::uint64_t bytes_from_backend = 0;
};

struct StatsSnapshot {
  std::uint64_t accepted = 0;
  std::uint64_t active = 0;
  std::uint64_t bytes_client_to_upstream = 0;
  std::uint64_t bytes_upstream_to_client = 0;
  std::map<std::string, std::uint64_t> ended;  // by end reason name, reasons seen only
  std::map<std::string, BackendStats> backends;
};

class Stats {
 public:
  void accepted() { ++accepted_; ++active_; }
  // Once per accepted connection, when it is gone.
  void ended(EndReason reason, const std::string& backend, std::uint64_t to_upstream,
             std::uint64_t to_client);
  StatsSnapshot snapshot() const;

 private:
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> active_{0};
  std::atomic<std::uint64_t> to_upstream_{0};
  std::atomic<std::uint64_t> to_client_{0};
  std::array<std::atomic<std::uint64_t>, kEndReasons> ended_{};
  mutable std::mutex mu_;
  std::map<std::string, BackendStats> backends_;
};

}  // namespace snigate::daemon
