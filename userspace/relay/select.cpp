#include "relay/select.h"

#include <spdlog/spdlog.h>

#include "relay/copy_relay.h"
#include "relay/splice_relay.h"
#ifdef SNIGATE_RELAY_SOCKMAP
#include "relay_sockmap/sockmap_relay.h"
#endif

namespace snigate::relay {

namespace {

// Splice when this kernel has it, else copy: the fallback of sockmap, and of splice itself.
RelaySelection userspace_relay(Mode requested) {
  std::string why_not;
  if (SpliceRelay::available(&why_not))
    return {std::make_shared<SpliceRelay>(),
            (requested == Mode::Splice ? "configured relay = splice"
                                                : "splice(2) available")};
  return {std::make_shared<CopyRelay>(), why_not + "; falling back to copy"};
}

RelaySelection choose(Mode requested, [[maybe_unused]] std::uint64_t sockmap_queue_limit) {
  if (requested == Mode::Copy) return {std::make_shared<CopyRelay>(), "configured relay = copy"};
  if (requested == Mode::Splice) return userspace_relay(requested);
  if (requested == Mode::Auto) {
    // The kernel relay is opt-in: while a direction is paused its source keeps taking bytes
    // past its receive buffer, and two full-speed streams through an echoing peer can then
    // stall for minutes (README, "The sockmap relay today"); splice led it in the bench but
    // for a one-connection upload.
    RelaySelection s = userspace_relay(requested);
    s.reason = "sockmap only when configured (relay = \"sockmap\"); " + s.reason;
    return s;
  }
  // Sockmap: the kernel relay when its programs load and attach here. Connections it cannot
  // hand off run on the userspace relay picked the same way.
  RelaySelection fallback = userspace_relay(requested);
#ifdef SNIGATE_RELAY_SOCKMAP
  std::string why_not;
  if (auto sockmap = SockmapRelay::create(fallback.relay, &why_not,
                                          {.inflight_cap = sockmap_queue_limit}))
    return {sockmap, "configured relay = sockmap"};
#else
  std::string why_not = "built without BPF (SNIGATE_BPF=OFF)";
#endif
  fallback.reason = "sockmap unavailable: " + why_not + "; " + fallback.reason;
  return fallback;
}

}  // namespace

RelaySelection select_relay(Mode requested, std::uint64_t sockmap_queue_limit) {
  RelaySelection s = choose(requested, sockmap_queue_limit);
  spdlog::info("relay: {} (requested {}: {})", to_string(s.relay->mode()), to_string(requested),
               s.reason);
  return s;
}

}  // namespace snigate::relay
