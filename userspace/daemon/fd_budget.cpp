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

std::size_t descriptors_for_connections(std::uint64_t limit, std::size_t listening_sockets) {
  const std::uint64_t reserve = 64 + listening_sockets + limit / 16;
  return limit > reserve ? static_cast<std::size_t>(limit - reserve) : 0;
}

ConnectionBudget budget_connections(const BudgetRequest& r) {
  ConnectionBudget b;
  const std::size_t room = descriptors_for_connections(r.limit, r.listening_sockets);
  const std::size_t wanted = r.max_connections.value_or(r.default_max_connections);
  if (r.pipes) {
    if (r.max_pipes) {
      const std::size_t most = room / 2 / kDescriptorsPerPipe;
      b.max_pipes = std::min(*r.max_pipes, most);
      b.pipes_capped = *r.max_pipes > most;
    } else {
      // 2 per connection and 2 per pipe at a quarter pipe each: 2.5 per connection.
      const std::size_t connections = std::min(wanted, room * 2 / 5);
      b.max_pipes = std::max<std::size_t>(1, connections / 4);
    }
  }
  const std::size_t pipe_descriptors = b.max_pipes * kDescriptorsPerPipe;
  const std::size_t left = room > pipe_descriptors ? room - pipe_descriptors : 0;
  b.affordable = std::max<std::size_t>(1, left / kDescriptorsPerConnection);
  b.max_connections = std::min(wanted, b.affordable);
  b.capped = r.max_connections && *r.max_connections > b.affordable;
  return b;
}

}  // namespace snigate::daemon
