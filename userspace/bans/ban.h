#pragma once
// A ban as every producer (snigatectl, jails, the remote channel) asks for it, and as the
// ban subsystem reports it back.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "net/prefix.h"

namespace snigate::bans {

using Clock = std::chrono::system_clock;

// The longest timed ban: ten years. Longer is what a permanent ban is for, and the bound keeps
// now + duration (and a repeat offender's escalation) far inside the clocks' range, which
// ends in 2262 for nanosecond time points.
inline constexpr std::chrono::seconds kMaxBanDuration{3650LL * 86400};
// Times a peer sends (matched_at, created, expires) are taken between the epoch and this
// (2100-01-01T00:00:00Z), so none overflows a time point or the store's milliseconds.
inline constexpr std::int64_t kLatestUnixSeconds = 4102444800;

struct BanRequest {
  net::Prefix prefix;
  std::optional<std::chrono::seconds> duration;  // nullopt: permanent
  std::string reason;
  std::string source;  // "ctl", "jail:NAME", "remote:ADDR", "fail2ban"
  std::string jail;    // empty unless a jail asked
  std::optional<Clock::time_point> matched_at;  // time read from the log line
  std::string sample;  // one offending log line
  bool force = false;  // allows banning inside a configured `ignore` network
  // Idempotency key (snigate-watch sets one per ban, kept across its retries): a request with
  // the id of the prefix's ban in force is that ban delivered again, not a new offence.
  std::string id;
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
  std::string id;              // the request's idempotency key; in memory only
};

// What a ban request came to.
struct BanOutcome {
  bool ok = false;
  std::string error;  // when !ok: what was wrong and what to do
  BanEntry entry;
  std::size_t connections_closed = 0;
  bool stored = true;  // false: the disk refused; the ban holds in the map anyway
};

}  // namespace snigate::bans
