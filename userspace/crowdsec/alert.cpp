#include "crowdsec/alert.h"

#include <algorithm>
#include <ctime>

#include <nlohmann/json.hpp>

namespace snigate::crowdsec {
namespace {

// RFC 3339 in UTC, as LAPI's models (strfmt.DateTime) read it.
std::string rfc3339(bans::Clock::time_point t) {
  const std::time_t secs = bans::Clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

nlohmann::json alert_json(const bans::BanEntry& entry, bans::Clock::time_point now) {
  const std::string value = entry.prefix.str();
  const char* scope = entry.prefix.is_host() ? "Ip" : "Range";
  const std::string scenario = !entry.jail.empty() ? entry.jail
                               : entry.source == "ctl" ? "snigatectl"
                                                       : entry.source;
  auto left = entry.expires ? std::chrono::ceil<std::chrono::seconds>(*entry.expires - now)
                            : std::chrono::duration_cast<std::chrono::seconds>(bans::kMaxBanDuration);
  left = std::max(left, std::chrono::seconds(1));
  const auto at = rfc3339(entry.matched_at.value_or(entry.created));
  nlohmann::json source{{"scope", scope}, {"value", value}};
  source[entry.prefix.is_host() ? "ip" : "range"] = value;
  nlohmann::json meta = nlohmann::json::array();
  meta.push_back({{"key", "log_line"}, {"value", entry.sample}});
  meta.push_back({{"key", "snigate_source"}, {"value", entry.source}});
  return {
      {"scenario", scenario},
      {"scenario_hash", ""},
      {"scenario_version", ""},
      {"message", "snigate " + entry.source + " banned " + value +
                      (entry.reason.empty() ? "" : ": " + entry.reason)},
      {"events_count", 1},
      {"start_at", at},
      {"stop_at", rfc3339(entry.created)},
      {"capacity", 0},
      {"leakspeed", "0"},
      {"simulated", false},
      {"remediation", true},
      {"source", std::move(source)},
      {"events", nlohmann::json::array({{{"timestamp", at}, {"meta", std::move(meta)}}})},
      {"decisions", nlohmann::json::array({{{"duration", std::to_string(left.count()) + "s"},
                                            {"origin", kPushOrigin},
                                            {"scenario", scenario},
                                            {"scope", scope},
                                            {"type", "ban"},
                                            {"value", value}}})},
  };
}

}  // namespace snigate::crowdsec
