#pragma once
// Picks the relay for a configured mode once, at start-up and on reload, and says why.
#include <memory>
#include <string>

#include "relay/relay.h"

namespace snigate::relay {

struct RelaySelection {
  std::shared_ptr<Relay> relay;
  std::string reason;
};

// auto: sockmap when available, else splice, else copy. An explicit mode that this kernel
// cannot do falls back the same way, and the reason says so. Logs the choice.
RelaySelection select_relay(Mode requested);

}  // namespace snigate::relay
