#pragma once
// The file-descriptor budget: a daemon that accepts past its RLIMIT_NOFILE fails in accept()
// with every client left waiting in the backlog, so max_connections is derived from what the
// limit affords under the running relay, and connections past it are refused cleanly.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "relay/relay.h"

namespace snigate::daemon {

struct DescriptorLimit {
  std::uint64_t soft = 0;  // after raising
  std::uint64_t was = 0;   // before
};

// Raises the soft RLIMIT_NOFILE to the hard limit (the kernel's default soft limit of 1024 is
// for select(), which nothing here uses).
DescriptorLimit raise_descriptor_limit();

// Descriptors one relayed connection holds in every relay: its two sockets. Splice's pipes
// are the process's bounded pool's (relay/pipe_pool.h), counted apart; a connection the
// sockmap relay hands to the kernel holds map entries and no descriptor.
inline constexpr std::size_t kDescriptorsPerConnection = 2;
inline constexpr std::size_t kDescriptorsPerPipe = 2;

// What the connections and pipes may use of `limit`: the rest is kept for listening sockets
// (one per listener and worker), control and remote clients, logs, the ban store, BPF
// objects, the watchers' files, DNS and connect attempts to several addresses.
std::size_t descriptors_for_connections(std::uint64_t limit, std::size_t listening_sockets);

struct ConnectionBudget {
  std::size_t max_connections = 0;  // what the daemon enforces
  std::size_t affordable = 0;       // what the limit allows beside the pipes
  std::size_t max_pipes = 0;        // the pipe pool's bound; 0 when the relay splices not
  bool capped = false;        // a configured max_connections above `affordable`
  bool pipes_capped = false;  // a configured max_pipes above what the limit allows
};

struct BudgetRequest {
  std::uint64_t limit = 0;  // RLIMIT_NOFILE
  std::size_t listening_sockets = 0;
  bool pipes = false;  // the running relay may take pipes (Relay::uses_pipes)
  std::optional<std::size_t> max_connections;  // [daemon] max_connections when set
  std::optional<std::size_t> max_pipes;        // [daemon] max_pipes when set
  std::size_t default_max_connections = 0;
};

// The default max_connections is what the limit affords, at most default_max_connections.
// The default max_pipes is a quarter of max_connections, as HAProxy's maxpipes is of its
// maxconn (a pipe serves one busy direction; most connections are idle at any moment), and
// the connections afford what the pipes leave: 2.5 descriptors per connection. A configured
// max_pipes takes at most half of the descriptors.
ConnectionBudget budget_connections(const BudgetRequest& request);

}  // namespace snigate::daemon
