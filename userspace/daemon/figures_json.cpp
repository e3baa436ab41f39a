#include "daemon/figures.h"

namespace snigate::daemon {

using nlohmann::json;

json to_json(const Figures& f) {
  const proxy::StatsSnapshot& s = f.stats;
  json backends = json::object();
  for (const auto& [name, b] : s.backends)
    backends[name] = {{"connections", b.connections},
                      {"failures", b.failures},
                      {"bytes_to_backend", b.bytes_to_backend},
                      {"bytes_from_backend", b.bytes_from_backend}};
  json listeners = json::object();
  for (const auto& [name, l] : s.listeners) {
    json ended = json::object();
    for (std::size_t i = 0; i < proxy::kEndReasons; ++i)
      if (l.ended[i]) ended[to_string(static_cast<proxy::EndReason>(i))] = l.ended[i];
    json bytes = json::object();
    for (const auto& [backend, b] : l.bytes)
      bytes[backend.empty() ? "(tunnels)" : backend] = {{"to_backend", b.first},
                                                        {"from_backend", b.second}};
    listeners[name] = {{"accepted", l.accepted},
                       {"active", l.active},
                       {"ended", std::move(ended)},
                       {"preread", {{"count", l.preread.count},
                                    {"seconds_total", l.preread.sum_seconds}}},
                       {"bytes", std::move(bytes)}};
  }
  json servers = json::object();
  for (const auto& [key, v] : s.servers)
    servers[key.first + " " + key.second] = {{"connects", v.connects},
                                             {"failures", v.failures},
                                             {"no_local_port", v.no_local_port},
                                             {"connect_seconds_total", v.connect_time.sum_seconds}};
  for (const auto& h : f.health) servers[h.backend + " " + h.server]["up"] = h.up;
  json relayed = json::object();
  for (auto mode : {relay::Mode::Sockmap, relay::Mode::Splice, relay::Mode::Copy})
    relayed[relay::to_string(mode)] = s.relayed[static_cast<std::size_t>(mode)];
  json fallbacks = json::object();
  for (std::size_t i = 1; i < relay::kFallbacks; ++i)
    fallbacks[relay::to_string(static_cast<relay::Fallback>(i))] = s.fallbacks[i];
  // Unbounded (a relay that splices not, or no budget set): no bound to show.
  json pipes{{"open", f.pipes.open}, {"bursts_by_copy", f.pipes.bursts_by_copy}};
  if (f.pipes.max != relay::kUnboundedPipes) pipes["max"] = f.pipes.max;

  json out{{"connections", {{"accepted", s.accepted}, {"active", s.active}}},
           {"bytes", {{"client_to_upstream", s.bytes_client_to_upstream},
                      {"upstream_to_client", s.bytes_upstream_to_client}}},
           {"ended", s.ended},
           {"backends", std::move(backends)},
           {"listeners", std::move(listeners)},
           {"servers", std::move(servers)},
           {"relay", {{"requested", relay::to_string(f.relay_requested)},
                      {"mode", relay::to_string(f.relay_mode)},
                      {"connections", std::move(relayed)},
                      {"fallbacks", std::move(fallbacks)},
                      {"pipes", std::move(pipes)}}},
           {"routing", {{"regex_limit_hits", f.regex_limit_hits}}},
           {"control", {{"refused", f.control_refused}}},
           {"bound", f.bound}};
  if (f.remote_refused) out["remote_ban"] = {{"refused", *f.remote_refused}};
  if (f.bans) {
    out["bans"] = {{"active", f.bans->active},
                   {"refused_at_accept", f.bans->refused_at_accept},
                   {"packets_inspected", f.bans->packets},
                   {"packets_dropped", f.bans->dropped},
                   {"unsaved", f.bans->unsaved},
                   {"enforcement", f.enforcement}};
  }
  if (!f.jails.empty()) {
    json jails = json::object();
    for (const auto& j : f.jails)
      jails[j.name] = {{"lines", j.lines}, {"matches", j.matches}, {"bans", j.bans}};
    out["jails"] = std::move(jails);
  }
  return out;
}

}  // namespace snigate::daemon
