#include "daemon/fd_budget.h"

#include <sys/resource.h>

#include <algorithm>

namespace snigate::daemon {

DescriptorLimit raise_descriptor_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return {};
  DescriptorLimit out{r.rlim_cur, r.rlim_cur};
  if (r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &r) == 0) out.soft = r.rlim_max;
  }
  return out;
}

std::size_t descriptors_per_connection(relay::Mode running) {
  return running == relay::Mode::Copy ? 2 : 6;
}

std::size_t descriptors_for_connections(std::uint64_t limit, std::size_t listening_sockets) {
  const std::uint64_t reserve = 64 + listening_sockets + limit / 16;
  return limit > reserve ? static_cast<std::size_t>(limit - reserve) : 0;
}

ConnectionBudget budget_connections(std::uint64_t limit, std::size_t listening_sockets,
                                    relay::Mode running, std::optional<std::size_t> configured,
                                    std::size_t default_max) {
  ConnectionBudget b;
  b.per_connection = descriptors_per_connection(running);
  b.affordable = std::max<std::size_t>(
      1, descriptors_for_connections(limit, listening_sockets) / b.per_connection);
  const std::size_t wanted = configured.value_or(default_max);
  b.max_connections = std::min(wanted, b.affordable);
  b.capped = configured && *configured > b.affordable;
  return b;
}

}  // namespace snigate::daemon
