// The ban program against the userspace rule, on random bans and addresses (fixed seed,
// bounded count): for every address, the program drops a frame from it exactly when
// ban_in_force finds a ban (over FakeBanMap, userspace's own longest match, and over the
// kernel's tries), the accept-time BanIndex names the same ban, and in the end every ban has
// counted exactly the drops that the rule gave it.
#include <iostream>
#include <map>
#include <random>

#include "bans/ban_index.h"
#include "bans/fake_ban_map.h"
#include "verdict_support.h"

namespace snigate::vmtest {
namespace {

namespace ip = boost::asio::ip;

constexpr int kBansPerFamily = 150;
constexpr int kTowersPerFamily = 6;
constexpr int kAddressesPerFamily = 1500;
constexpr std::uint64_t kHourNs = 3'600'000'000'000ull;

class RandomBans {
 public:
  RandomBans(std::uint64_t seed, std::uint64_t now) : rng_(seed), now_(now) {}

  // 10.5.0.0/16 and fd00:5::/96, wide enough that most random addresses are not banned.
  ip::address address(bool v4) {
    if (v4) return ip::address_v4(0x0A050000u | (rng_() & 0xffffu));
    auto b = ip::make_address_v6("fd00:5::").to_bytes();
    for (int i = 12; i < 16; ++i) b[i] = static_cast<std::uint8_t>(rng_());
    return ip::address_v6(b);
  }
  // An address near `base`: its last 1..12 bits random, so it falls inside some of the bans
  // around `base` and outside others.
  ip::address near(const ip::address& base) {
    const unsigned bits = 1 + rng_() % 12;
    if (base.is_v4()) {
      const auto mask = (1u << bits) - 1;
      return ip::address_v4((base.to_v4().to_uint() & ~mask) | (rng_() & mask));
    }
    auto b = base.to_v6().to_bytes();
    std::uint32_t low = 0;
    for (int i = 12; i < 16; ++i) low = low << 8 | b[i];
    const auto mask = (1u << bits) - 1;
    low = (low & ~mask) | (static_cast<std::uint32_t>(rng_()) & mask);
    for (int i = 0; i < 4; ++i) b[12 + i] = static_cast<std::uint8_t>(low >> (24 - 8 * i));
    return ip::address_v6(b);
  }
  // 20..32 bits for IPv4, 100..128 for IPv6, and one in 16 anywhere from 0: those are
  // expired, or a live /3 would ban everything.
  unsigned length(bool v4, bool& short_one) {
    const unsigned bits = v4 ? 32 : 128;
    short_one = rng_() % 16 == 0;
    if (short_one) return rng_() % (bits - 12);
    return bits - rng_() % (v4 ? 13 : 29);
  }
  // A third permanent, a third expired (at or before now), a third an hour or more ahead.
  std::uint64_t expiry() {
    switch (rng_() % 3) {
      case 0: return 0;
      case 1: return expired();
      default: return now_ + kHourNs + rng_() % kHourNs;
    }
  }
  std::uint64_t expired() { return 1 + rng_() % now_; }
  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
  std::uint64_t now_;
};

using BanRuleTest = BanVerdictTest;

TEST_P(BanRuleTest, ProgramAgreesWithTheUserspaceRuleOnRandomBans) {
  const auto now = bans::SystemBanClock().boot_ns();
  RandomBans random(16, now);
  bans::FakeBanMap model;
  bans::BanIndex index;
  std::vector<ip::address> bases[2];  // per family (v4 first): the addresses bans were made of
  auto put = [&](const net::Prefix& p, std::uint64_t expires) {
    std::string error;
    ASSERT_TRUE(model.put({p, expires, 0}, error)) << error;
    index.put(p, expires);
    ban(p, expires);
  };
  for (const bool v4 : {true, false}) {
    for (int i = 0; i < kBansPerFamily; ++i) {
      bases[!v4].push_back(random.address(v4));
      bool short_one = false;
      const unsigned length = random.length(v4, short_one);
      put(net::Prefix::covering(bases[!v4].back(), length),
          short_one ? random.expired() : random.expiry());
    }
    // Towers: a live ban right under a stack of 5..12 expired ones, one per length, some
    // deeper than the SNIGATE_BAN_EXPIRED_RETRIES (8) the program looks past.
    for (int i = 0; i < kTowersPerFamily; ++i) {
      const auto base = bases[!v4].emplace_back(random.address(v4));
      const unsigned top = v4 ? 32 : 128, depth = 5 + random.rng()() % 8;
      for (unsigned k = 0; k < depth; ++k)
        put(net::Prefix::covering(base, top - k), random.expired());
      put(net::Prefix::covering(base, top - depth), 0);
    }
  }

  std::map<net::Prefix, std::uint64_t> expected_drops;
  std::uint64_t runs = 0, dropped_v4 = 0, dropped_v6 = 0;
  const auto before = map_->totals();
  for (const bool v4 : {true, false}) {
    for (int i = 0; i < kAddressesPerFamily; ++i) {
      const auto& made = bases[!v4];
      const auto source = i % 2 ? random.address(v4)
                                : random.near(made[random.rng()() % made.size()]);
      Frame frame;
      for (unsigned tags = random.rng()() % 3; tags > 0; --tags)
        frame.tag(tags == 2 ? ETH_P_8021AD : ETH_P_8021Q, 7);
      const bool dropped = drops(frame.from(source));
      ++runs;
      const auto want = bans::ban_in_force(model, source, now);
      ASSERT_EQ(dropped, want.has_value())
          << source.to_string() << (want ? " should be dropped under " + want->prefix.str()
                                         : std::string(" should pass"));
      const auto kernel = bans::ban_in_force(*map_, source, now);
      ASSERT_EQ(kernel.has_value(), want.has_value()) << source.to_string();
      const auto mirror = index.match(source, now);
      ASSERT_EQ(mirror.has_value(), want.has_value()) << source.to_string();
      if (!want) continue;
      EXPECT_EQ(kernel->prefix, want->prefix) << source.to_string();
      EXPECT_EQ(*mirror, want->prefix) << source.to_string();
      ++expected_drops[want->prefix];
      ++(v4 ? dropped_v4 : dropped_v6);
    }
  }
  // Both verdicts were common, or the comparison proved little.
  EXPECT_GT(dropped_v4 + dropped_v6, runs / 5);
  EXPECT_LT(dropped_v4 + dropped_v6, runs * 4 / 5);
  for (const auto& entry : map_->entries())
    EXPECT_EQ(entry.drops, expected_drops[entry.prefix]) << entry.prefix.str();
  const auto after = map_->totals();
  std::cout << "[ figures  ] " << runs << " frames, " << dropped_v4 << " + " << dropped_v6
            << " dropped (IPv4 + IPv6), " << after.expired_hits - before.expired_hits
            << " expired bans looked past\n";
  EXPECT_EQ(after.packets - before.packets, runs);
  EXPECT_EQ(after.dropped_v4 - before.dropped_v4, dropped_v4);
  EXPECT_EQ(after.dropped_v6 - before.dropped_v6, dropped_v6);
}

INSTANTIATE_TEST_SUITE_P(Hooks, BanRuleTest, ::testing::Values(kXdp, kTc), hook_name);

}  // namespace
}  // namespace snigate::vmtest
