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
  // The longest ban containing `client` that has not expired at boot time `now_ns`. Past an
  // expired one it keeps looking at shorter ones (the XDP program does so for
  // SNIGATE_BAN_EXPIRED_RETRIES levels, enough until the sweeper removes the expired one).
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
