#pragma once
// `[[jail]]` sections of the TOML config (the daemon's and snigate-watch's), parsed once
// into JailConfig with file:line errors (config/diag.h).
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "net/prefix.h"

namespace snigate::watch {

struct BantimeIncrement {
  double factor = 2.0;                                   // bantime * factor^(previous bans)
  std::chrono::seconds max = std::chrono::hours(24 * 7);  // cap
};

struct JailConfig {
  std::string name;
  std::vector<std::string> logpath;            // paths or globs
  std::string filter;                          // file path, name in filter_dir, "name[k=v]"; or empty
  std::vector<std::string> failregex;          // inline, used when `filter` is empty (or added)
  std::vector<std::string> ignoreregex;
  std::string datepattern;                     // overrides the filter's
  int maxretry = 5;
  std::chrono::seconds findtime = std::chrono::minutes(10);
  std::chrono::seconds bantime = std::chrono::minutes(10);
  std::optional<BantimeIncrement> bantime_increment;
  std::vector<net::Prefix> ignoreip;
  bool ignoreself = true;                      // fail2ban's: never ban the host's own addresses
  unsigned ban_prefix_v6 = 128;
  bool enabled = true;
  std::string filter_dir = "/etc/fail2ban/filter.d";
  std::string action = "ban";                  // the only action so far: ban at this edge
  std::string where;                           // "FILE:LINE" of the [[jail]], for messages
};

// `[watch]`: where followed files' positions are kept. snigated's config has no [watch]
// (its top level is checked by config::parse): there they go to "watch" beside [bans] store.
struct WatchConfig {
  std::string state_dir = "/var/lib/snigate/watch";
};
WatchConfig parse_watch_config(const toml::table& root);

// Reads every [[jail]] of `root` (none: empty). Throws config::ConfigError "FILE:LINE: ..."
// for unknown keys, bad types, bad durations or prefixes, a jail with neither filter nor
// failregex, duplicate names. Filters are not loaded here (watch::start does that).
std::vector<JailConfig> parse_jails(const toml::table& root);

}  // namespace snigate::watch
