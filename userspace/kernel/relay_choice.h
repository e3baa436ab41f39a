#pragma once
// Picks the relay for a configured mode from what the kernel offers, once at start-up and on
// reload, and says why.
#include <cstdint>
#include <memory>
#include <string>

#include "kernel/kernel_features.h"
#include "relay/relay.h"

namespace snigate::kernel {

struct RelayChoice {
  std::shared_ptr<relay::Relay> relay;
  std::string reason;
};

// The [daemon] keys that shape the sockmap relay.
struct SockmapSettings {
  // sockmap_queue_limit: bytes one direction may queue in the kernel before it is handed back
  // to userspace flow control (relay_abi.h).
  std::uint64_t queue_limit = 0;
  // sockmap_handoff_after: bytes either direction moves by copy before the kernel takes the
  // connection, unless it proves interactive first (sockmap_relay.h, step 0); 0 at once.
  std::uint64_t handoff_after = 0;
  bool operator==(const SockmapSettings&) const = default;
};

// auto: copy, splicing bulk bursts where splice(2) works, over the sockmap relay for
// connections that prove interactive where its programs load (relay_choice.cpp says why). An
// explicit mode that this kernel cannot do falls back sockmap, splice, copy, and the reason
// names the missing piece. Logs nothing.
RelayChoice choose_relay(relay::Mode requested, const SockmapSettings& sockmap,
                         const KernelFeatures& kernel);

// choose_relay, and one log line with the choice and its reason.
RelayChoice select_relay(relay::Mode requested, const SockmapSettings& sockmap,
                         const KernelFeatures& kernel);

// The line both print: "relay: copy (requested auto: ...)".
std::string describe(const RelayChoice& choice, relay::Mode requested);

}  // namespace snigate::kernel
