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

// Descriptors one relayed connection holds: its two sockets, and two pipes under splice, and
// under sockmap (whose connections the kernel will not take run on splice).
std::size_t descriptors_per_connection(relay::Mode running);

// What the connections may use of `limit`: the rest is kept for listening sockets (one per
// listener and worker), control and remote clients, logs, the ban store, BPF objects, the
// watchers' files, DNS and connect attempts to several addresses.
std::size_t descriptors_for_connections(std::uint64_t limit, std::size_t listening_sockets);

struct ConnectionBudget {
  std::size_t max_connections = 0;  // what the daemon enforces
  std::size_t affordable = 0;       // what the limit allows
  std::size_t per_connection = 0;
  bool capped = false;  // a configured max_connections above `affordable`
};

// `configured`: [daemon] max_connections when the file sets it; the default is what the
// limit affords, at most `default_max`.
ConnectionBudget budget_connections(std::uint64_t limit, std::size_t listening_sockets,
                                    relay::Mode running, std::optional<std::size_t> configured,
                                    std::size_t default_max);

}  // namespace snigate::daemon
