#include "bans/ban_map.h"

#include <time.h>

#include "snigate/bpf/ban_rule.h"

namespace snigate::bans {

std::uint64_t SystemBanClock::boot_ns() const {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

std::optional<MapBan> ban_in_force(const BanMap& map, const boost::asio::ip::address& client,
                                   std::uint64_t now_ns) {
  const auto address = net::unmap(client);
  auto key = net::Prefix::host(address);
  for (__u32 attempt = 0; attempt <= SNIGATE_BAN_EXPIRED_RETRIES; ++attempt) {
    auto hit = map.longest_match(key);
    if (!hit) return std::nullopt;
    __u32 next = 0;
    switch (snigate_ban_step(hit->expires_ns, now_ns, hit->prefix.length(), attempt, &next)) {
      case SNIGATE_BAN_HIT: return hit;
      case SNIGATE_BAN_MISS: return std::nullopt;
      case SNIGATE_BAN_RETRY: key = net::Prefix::covering(address, next); break;
    }
  }
  return std::nullopt;
}

}  // namespace snigate::bans
