#pragma once
// Picks the relay for a configured mode once, at start-up and on reload, and says why.
#include <cstdint>
#include <memory>
#include <string>

#include "relay/relay.h"

namespace snigate::relay {

struct RelaySelection {
  std::shared_ptr<Relay> relay;
  std::string reason;
};

// auto: splice, else copy (sockmap only when configured: select.cpp says why). An explicit
// mode that this kernel cannot do falls back sockmap, splice, copy, and the reason says so.
// Logs the choice.
// `sockmap_queue_limit`: bytes one direction may queue in the kernel before it is handed
// back to userspace flow control (relay_abi.h).
RelaySelection select_relay(Mode requested, std::uint64_t sockmap_queue_limit);

}  // namespace snigate::relay
