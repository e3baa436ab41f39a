#pragma once
// Everything snigated counts, gathered at one moment from where it is kept (the sessions'
// Stats, the ban maps' counters, the jails, the control and remote channels), and the two
// ways it is shown: `snigatectl stats` (JSON) and GET /metrics (Prometheus text). Both read
// one Figures, so they never disagree on what a figure is.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bans/ban_manager.h"
#include "proxy/stats.h"
#include "relay/mode.h"
#include "relay/pipe_pool.h"
#include "watch/watcher.h"

namespace snigate::daemon {

struct ServerHealth {
  std::string backend;
  std::string server;  // address as configured
  bool up = true;      // passive health: not marked down by max_fails
};

struct Figures {
  proxy::StatsSnapshot stats;
  relay::Mode relay_requested = relay::Mode::Auto;
  relay::Mode relay_mode = relay::Mode::Auto;  // the relay the running configuration uses
  relay::PipeFigures pipes;                    // the splice relay's pipe pool
  std::vector<ServerHealth> health;            // the running configuration's servers
  std::uint64_t regex_limit_hits = 0;
  std::optional<bans::BanTotals> bans;         // none when [bans] enabled = false
  std::vector<std::string> enforcement;
  std::vector<watch::JailFigures> jails;
  std::uint64_t control_refused = 0;
  std::optional<std::uint64_t> remote_refused;  // none without [remote_ban]
  // Where each listener of the running configuration is bound (ADDR:PORT, kernel-chosen ports
  // included), as the ready line says at start-up: a listener a reload added shows here.
  std::map<std::string, std::string> bound;
};

// `snigatectl stats`: the figures as nested JSON (flattened to rows by the tool).
nlohmann::json to_json(const Figures& f);
// GET /metrics: the Prometheus text exposition; README.md's Metrics section lists the names.
std::string to_prometheus(const Figures& f);

}  // namespace snigate::daemon
