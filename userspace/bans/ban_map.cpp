#include "bans/ban_map.h"

#include <time.h>

#include "snigate/bpf/ban_abi.h"

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
  for (int attempt = 0; attempt <= SNIGATE_BAN_EXPIRED_RETRIES; ++attempt) {
    auto hit = map.longest_match(key);
    if (!hit) return std::nullopt;
    if (hit->expires_ns == 0 || hit->expires_ns > now_ns) return hit;
    if (hit->prefix.length() == 0) return std::nullopt;
    key = net::Prefix::covering(address, hit->prefix.length() - 1);
  }
  return std::nullopt;
}

}  // namespace snigate::bans
