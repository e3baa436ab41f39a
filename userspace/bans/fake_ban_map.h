#pragma once
// In-memory BanMap and a hand-driven clock, for unit tests without root (here and in the
// daemon's, jails' and control socket's tests). Longest-prefix match done by brute force.
#include <atomic>
#include <map>
#include <mutex>

#include "bans/ban_map.h"

namespace snigate::bans {

class ManualClock final : public BanClock {
 public:
  ManualClock() : wall_(Clock::time_point(std::chrono::seconds(1'800'000'000))) {}
  std::uint64_t boot_ns() const override { return boot_ns_.load(); }
  Clock::time_point wall() const override {
    std::lock_guard lock(mu_);
    return wall_;
  }
  // Both clocks move together, as they do on a running machine.
  void advance(std::chrono::nanoseconds by);
  // A reboot: boot time starts again near zero, the wall clock goes on.
  void reboot();

 private:
  std::atomic<std::uint64_t> boot_ns_{1'000'000'000};
  mutable std::mutex mu_;
  Clock::time_point wall_;
};

class FakeBanMap final : public BanMap {
 public:
  bool put(const MapBan& ban, std::string& error) override;
  bool erase(const net::Prefix& prefix) override;
  std::optional<MapBan> longest_match(const net::Prefix& key) const override;
  std::vector<MapBan> entries() const override;
  MapTotals totals() const override { return {}; }
  std::vector<std::string> enforcement() const override { return {}; }

  // What the XDP program does to one packet from `source`: counts a drop on the ban it
  // hits. Returns whether the packet would be dropped.
  bool packet_from(const boost::asio::ip::address& source, std::uint64_t now_ns);
  std::size_t puts() const { return puts_; }    // writes so far: reconciliation must not storm
  std::size_t erases() const { return erases_; }
  std::size_t capacity = 1'000'000;             // put() refuses beyond this, like a full trie

 private:
  mutable std::mutex mu_;
  std::map<net::Prefix, MapBan> entries_;
  std::size_t puts_ = 0;
  std::size_t erases_ = 0;
};

}  // namespace snigate::bans
