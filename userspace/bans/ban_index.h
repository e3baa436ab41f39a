#pragma once
// The bans in force, mirrored in memory for the accept-time check: a bpf() syscall per
// accepted connection costs microseconds, a lookup here tens of nanoseconds. BanManager
// writes it next to every map change, so it holds exactly what the pinned tries hold (only
// the manager writes those). Many readers, rare writers.
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "net/prefix.h"

namespace snigate::bans {

class BanIndex {
 public:
  void put(const net::Prefix& prefix, std::uint64_t expires_ns);  // 0 = permanent
  void erase(const net::Prefix& prefix);
  void clear();
  // The ban the program would drop `client`'s packets under at boot time `now_ns`: the
  // longest that holds, looking past at most SNIGATE_BAN_EXPIRED_RETRIES expired ones
  // (snigate/bpf/ban_rule.h, the rule the program and ban_in_force apply too).
  std::optional<net::Prefix> match(const boost::asio::ip::address& client, std::uint64_t now_ns) const;
  std::size_t size() const;
  // Every ban whose expiry has passed at `now_ns`, for the sweeper.
  std::vector<net::Prefix> expired(std::uint64_t now_ns) const;

 private:
  using Bytes = std::array<std::uint8_t, 16>;
  struct Hash {
    std::size_t operator()(const Bytes& b) const noexcept;
  };
  // Per family, per prefix length (longest first): network bytes -> expiry.
  using Level = std::unordered_map<Bytes, std::uint64_t, Hash>;
  using Family = std::map<unsigned, Level, std::greater<>>;
  Family& family(bool v4) { return v4 ? v4_ : v6_; }

  mutable std::shared_mutex mu_;
  Family v4_, v6_;
};

}  // namespace snigate::bans
