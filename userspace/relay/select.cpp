#include "relay/select.h"

#include <spdlog/spdlog.h>

#include "relay/copy_relay.h"
#include "relay/splice_relay.h"

namespace snigate::relay {

namespace {

RelaySelection choose(Mode requested) {
  std::string why_not;
  if (requested == Mode::Copy) return {std::make_shared<CopyRelay>(), "configured relay = copy"};
  std::string prefix;
  if (requested == Mode::Sockmap || requested == Mode::Auto) {
    // The kernel-side relay is not built into this daemon yet.
    prefix = requested == Mode::Sockmap ? "sockmap requested but not available; " : "";
  }
  if (SpliceRelay::available(&why_not))
    return {std::make_shared<SpliceRelay>(),
            prefix + (requested == Mode::Splice ? "configured relay = splice"
                                                : "splice(2) available")};
  return {std::make_shared<CopyRelay>(), prefix + why_not + "; falling back to copy"};
}

}  // namespace

RelaySelection select_relay(Mode requested) {
  RelaySelection s = choose(requested);
  spdlog::info("relay: {} (requested {}: {})", to_string(s.relay->mode()), to_string(requested),
               s.reason);
  return s;
}

}  // namespace snigate::relay
