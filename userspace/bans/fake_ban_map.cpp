#include "bans/fake_ban_map.h"

namespace snigate::bans {

void ManualClock::advance(std::chrono::nanoseconds by) {
  boot_ns_ += static_cast<std::uint64_t>(by.count());
  std::lock_guard lock(mu_);
  wall_ += std::chrono::duration_cast<Clock::duration>(by);
}

void ManualClock::reboot() { boot_ns_ = 1'000'000'000; }

bool FakeBanMap::put(const MapBan& ban, std::string& error) {
  std::lock_guard lock(mu_);
  if (!entries_.count(ban.prefix) && entries_.size() >= capacity) {
    error = "ban map is full (" + std::to_string(capacity) + " entries)";
    return false;
  }
  entries_[ban.prefix] = ban;
  ++puts_;
  return true;
}

bool FakeBanMap::erase(const net::Prefix& prefix) {
  std::lock_guard lock(mu_);
  if (!entries_.erase(prefix)) return false;
  ++erases_;
  return true;
}

std::optional<MapBan> FakeBanMap::longest_match(const net::Prefix& key) const {
  std::lock_guard lock(mu_);
  std::optional<MapBan> best;
  for (const auto& [prefix, ban] : entries_) {
    if (prefix.is_v4() != key.is_v4() || !prefix.contains(key)) continue;
    if (!best || prefix.length() > best->prefix.length()) best = ban;
  }
  return best;
}

std::vector<MapBan> FakeBanMap::entries() const {
  std::lock_guard lock(mu_);
  std::vector<MapBan> out;
  for (const auto& [prefix, ban] : entries_) out.push_back(ban);
  return out;
}

bool FakeBanMap::packet_from(const boost::asio::ip::address& source, std::uint64_t now_ns) {
  auto hit = ban_in_force(*this, source, now_ns);
  if (!hit) return false;
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(hit->prefix); it != entries_.end()) ++it->second.drops;
  return true;
}

}  // namespace snigate::bans
