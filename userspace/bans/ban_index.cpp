#include "bans/ban_index.h"

#include <cstring>
#include <mutex>

#include "snigate/bpf/ban_rule.h"

namespace snigate::bans {
namespace {

boost::asio::ip::address address_of(const std::array<std::uint8_t, 16>& bytes, bool v4) {
  if (v4) return boost::asio::ip::address_v4({bytes[0], bytes[1], bytes[2], bytes[3]});
  return boost::asio::ip::address_v6(bytes);
}

}  // namespace

std::size_t BanIndex::Hash::operator()(const Bytes& b) const noexcept {
  std::uint64_t hi, lo;
  std::memcpy(&hi, b.data(), 8);
  std::memcpy(&lo, b.data() + 8, 8);
  return std::hash<std::uint64_t>()(hi * 0x9e3779b97f4a7c15ull ^ lo);
}

void BanIndex::put(const net::Prefix& prefix, std::uint64_t expires_ns) {
  std::unique_lock lock(mu_);
  family(prefix.is_v4())[prefix.length()][prefix.bytes()] = expires_ns;
}

void BanIndex::erase(const net::Prefix& prefix) {
  std::unique_lock lock(mu_);
  auto& fam = family(prefix.is_v4());
  auto level = fam.find(prefix.length());
  if (level == fam.end()) return;
  level->second.erase(prefix.bytes());
  if (level->second.empty()) fam.erase(level);
}

void BanIndex::clear() {
  std::unique_lock lock(mu_);
  v4_.clear();
  v6_.clear();
}

std::size_t BanIndex::size() const {
  std::shared_lock lock(mu_);
  std::size_t n = 0;
  for (const auto* fam : {&v4_, &v6_})
    for (const auto& [length, level] : *fam) n += level.size();
  return n;
}

std::vector<net::Prefix> BanIndex::expired(std::uint64_t now_ns) const {
  std::vector<net::Prefix> out;
  std::shared_lock lock(mu_);
  for (const auto* fam : {&v4_, &v6_}) {
    for (const auto& [length, level] : *fam) {
      for (const auto& [bytes, expires] : level) {
        if (snigate_ban_holds(expires, now_ns)) continue;
        out.push_back(net::Prefix::covering(address_of(bytes, fam == &v4_), length));
      }
    }
  }
  return out;
}

std::optional<net::Prefix> BanIndex::match(const boost::asio::ip::address& client,
                                           std::uint64_t now_ns) const {
  const auto address = net::unmap(client);
  const auto host = net::Prefix::host(address);
  const unsigned bits = host.is_v4() ? 32 : 128;
  std::shared_lock lock(mu_);
  const auto& fam = host.is_v4() ? v4_ : v6_;
  __u32 attempt = 0;
  for (const auto& [length, level] : fam) {
    // The address with its bits past `length` cleared, as Prefix stores a network.
    Bytes key = host.bytes();
    for (unsigned bit = length; bit < bits; ++bit) {
      if (bit % 8 == 0 && bit + 8 <= bits) {
        std::memset(key.data() + bit / 8, 0, (bits - bit) / 8);
        break;
      }
      key[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
    }
    auto it = level.find(key);
    if (it == level.end()) continue;
    // Levels run longest first, so the next one is at most the step's shorter length.
    __u32 shorter = 0;
    switch (snigate_ban_step(it->second, now_ns, length, attempt++, &shorter)) {
      case SNIGATE_BAN_HIT: return net::Prefix::covering(address, length);
      case SNIGATE_BAN_MISS: return std::nullopt;
      case SNIGATE_BAN_RETRY: break;
    }
  }
  return std::nullopt;
}

}  // namespace snigate::bans
