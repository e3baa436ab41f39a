#pragma once
// What `snigated --check -c FILE` runs: every section the daemon acts on ([daemon], listeners,
// tables, backends, [resolver] and the forward allow-lists, [bans], [remote_ban], [[jail]]
// with its filter), read by the same parsers the daemon starts with, without binding a
// socket, opening the ban store or touching a pinned BPF map; and what the kernel offers,
// with the relay and the ban enforcement the daemon would choose from it.
#include <memory>
#include <optional>
#include <string>

#include "config/config.h"
#include "relay/relay.h"

namespace snigate::daemon {

// The summary `--check` prints: config::check_summary plus a line per other section.
// Throws config::ConfigError ("FILE:LINE:COL: ...") or std::runtime_error naming the
// [[jail]] "FILE:LINE" for what the daemon would refuse at start.
// `relay_override`: snigated's --relay.
std::string check_config(std::shared_ptr<const config::Config> config,
                         std::optional<relay::Mode> relay_override);

}  // namespace snigate::daemon
