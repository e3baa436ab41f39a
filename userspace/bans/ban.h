#pragma once
// A ban as every producer (snigatectl, jails, the remote channel) asks for it, and as the
// ban subsystem reports it back.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "net/prefix.h"

namespace snigate::bans {

using Clock = std::chrono::system_clock;

struct BanRequest {
  net::Prefix prefix;
  std::optional<std::chrono::seconds> duration;  // nullopt: permanent
  std::string reason;
  std::string source;  // "ctl", "jail:NAME", "remote:ADDR", "fail2ban"
  std::string jail;    // empty unless a jail asked
  std::optional<Clock::time_point> matched_at;  // time read from the log line
  std::string sample;  // one offending log line
  bool force = false;  // allows banning inside a configured `ignore` network
};

struct BanEntry {
  net::Prefix prefix;
  Clock::time_point created;
  std::optional<Clock::time_point> expires;  // nullopt: permanent
  std::string reason;
  std::string source;
  std::string jail;
  std::optional<Clock::time_point> matched_at;
  std::string sample;
  std::uint64_t drops = 0;     // packets and connections refused under this ban
  std::uint32_t offences = 1;  // bans of this prefix in the history, this one included
};

}  // namespace snigate::bans
