#pragma once
// [daemon]'s sockmap keys, as the relay choice takes them (at start, reload and --check).
#include "config/config.h"
#include "kernel/relay_choice.h"

namespace snigate::daemon {

inline kernel::SockmapSettings sockmap_of(const config::DaemonConfig& d) {
  return {d.sockmap_queue_limit, d.sockmap_handoff_after};
}

}  // namespace snigate::daemon
