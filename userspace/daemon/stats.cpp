#include "daemon/stats.h"

namespace snigate::daemon {

void Stats::ended(EndReason reason, const std::string& backend, std::uint64_t to_upstream,
                  std::uint64_t to_client) {
  --active_;
  ++ended_[static_cast<std::size_t>(reason)];
  to_upstream_ += to_upstream;
  to_client_ += to_client;
  if (backend.empty()) return;
  std::lock_guard lock(mu_);
  auto& b = backends_[backend];
  ++b.connections;
  if (reason == EndReason::Refused) ++b.failures;
  b.bytes_to_backend += to_upstream;
  b.bytes_from_backend += to_client;
}

StatsSnapshot Stats::snapshot() const {
  StatsSnapshot s;
  s.accepted = accepted_;
  s.active = active_;
  s.bytes_client_to_upstream = to_upstream_;
  s.bytes_upstream_to_client = to_client_;
  for (std::size_t i = 0; i < kEndReasons; ++i)
    if (auto n = ended_[i].load()) s.ended[to_string(static_cast<EndReason>(i))] = n;
  std::lock_guard lock(mu_);
  s.backends = backends_;
  return s;
}

}  // namespace snigate::daemon
