#pragma once
// Typed access to the ban tries, behind a small interface so the manager's logic runs in
// unit tests over FakeBanMap and in the daemon over BpfBanMap (pinned maps + XDP/TC).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "bans/ban.h"
#include "net/prefix.h"

namespace snigate::bans {

// One trie entry as userspace sees it.
struct MapBan {
  net::Prefix prefix;
  std::uint64_t expires_ns = 0;  // CLOCK_BOOTTIME; 0 = permanent
  std::uint64_t drops = 0;
};

struct MapTotals {
  std::uint64_t packets = 0;
  std::uint64_t dropped_v4 = 0;
  std::uint64_t dropped_v6 = 0;
  std::uint64_t expired_hits = 0;
};

class BanMap {
 public:
  virtual ~BanMap() = default;
  // Inserts or replaces the entry for exactly `prefix`. False with advice when refused.
  virtual bool put(const MapBan& ban, std::string& error) = 0;
  // Removes exactly `prefix`; false when it was not there.
  virtual bool erase(const net::Prefix& prefix) = 0;
  // What the kernel's LPM lookup returns for `key`: the longest stored prefix containing it,
  // expired or not (the caller applies the expiry rule, as the XDP program does).
  virtual std::optional<MapBan> longest_match(const net::Prefix& key) const = 0;
  virtual std::vector<MapBan> entries() const = 0;
  virtual MapTotals totals() const = 0;
  // Per interface, how enforcement is attached; empty when nothing is.
  virtual std::vector<std::string> enforcement() const = 0;
};

// The ban in force for `client` at boot time `now_ns`, by the rule the XDP program applies
// (snigate/bpf/ban_rule.h): the longest match, and past an expired one the next shorter
// match (at most SNIGATE_BAN_EXPIRED_RETRIES times), so a stale /32 never hides a live /24.
std::optional<MapBan> ban_in_force(const BanMap& map, const boost::asio::ip::address& client,
                                   std::uint64_t now_ns);

// The two clocks a ban lives by: the program's CLOCK_BOOTTIME and the wall clock the store
// and the operator use.
class BanClock {
 public:
  virtual ~BanClock() = default;
  virtual std::uint64_t boot_ns() const = 0;
  virtual Clock::time_point wall() const = 0;
};

class SystemBanClock final : public BanClock {
 public:
  std::uint64_t boot_ns() const override;  // clock_gettime(CLOCK_BOOTTIME) = bpf_ktime_get_boot_ns()
  Clock::time_point wall() const override { return Clock::now(); }
};

}  // namespace snigate::bans
