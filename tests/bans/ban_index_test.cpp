// The accept-time mirror must refuse exactly whom the XDP program's rule (ban_in_force over
// the tries) refuses.
#include <random>

#include "bans/ban_index.h"
#include "snigate/bpf/ban_abi.h"
#include "test_support.h"

namespace snigate::bans::testing {
namespace {

TEST(BanIndex, LongestLiveMatchAndErase) {
  BanIndex index;
  index.put(prefix("10.5.0.0/16"), 0);
  index.put(prefix("10.5.2.0/23"), 500);
  index.put(prefix("10.5.2.7"), 100);
  EXPECT_EQ(index.match(addr("10.5.2.7"), 50)->str(), "10.5.2.7");
  EXPECT_EQ(index.match(addr("10.5.2.7"), 200)->str(), "10.5.2.0/23");  // host ban expired
  EXPECT_EQ(index.match(addr("::ffff:10.5.3.1"), 600)->str(), "10.5.0.0/16");
  EXPECT_FALSE(index.match(addr("10.6.0.1"), 0));
  EXPECT_FALSE(index.match(addr("fd00:5::1"), 0));
  index.erase(prefix("10.5.0.0/16"));
  EXPECT_FALSE(index.match(addr("10.5.3.1"), 600));
  EXPECT_EQ(index.size(), 2u);
}

// The program looks past at most SNIGATE_BAN_EXPIRED_RETRIES expired bans; the mirror must
// stop there too, or it refuses at accept a client whose packets XDP lets through.
TEST(BanIndex, LooksPastAsManyExpiredBansAsTheProgram) {
  BanIndex index;
  FakeBanMap map;
  auto put = [&](const net::Prefix& p, std::uint64_t expires) {
    std::string error;
    ASSERT_TRUE(map.put({p, expires, 0}, error)) << error;
    index.put(p, expires);
  };
  const auto client = addr("10.5.2.7");
  put(prefix("10.0.0.0/8"), 0);
  // One expired ban more than the program looks past: /32 down to /24.
  const unsigned expired = SNIGATE_BAN_EXPIRED_RETRIES + 1;
  for (unsigned length = 32; length > 32 - expired; --length)
    put(net::Prefix::covering(client, length), 100);
  EXPECT_FALSE(ban_in_force(map, client, 1000));
  EXPECT_FALSE(index.match(client, 1000));
  // One fewer: both reach the live /8.
  const auto shortest = net::Prefix::covering(client, 32 - expired + 1);
  ASSERT_TRUE(map.erase(shortest));
  index.erase(shortest);
  EXPECT_EQ(ban_in_force(map, client, 1000)->prefix.str(), "10.0.0.0/8");
  EXPECT_EQ(index.match(client, 1000)->str(), "10.0.0.0/8");
}

TEST(BanIndex, AgreesWithTheProgramsRuleOnRandomBans) {
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    BanIndex index;
    FakeBanMap map;
    // Bans inside 10.5.0.0/16 and fd00:5::/64 of every length, a third of them expired.
    for (int i = 0; i < 60; ++i) {
      const bool v4 = rng() % 2;
      const unsigned length = v4 ? 16 + rng() % 17 : 64 + rng() % 65;
      auto address = v4 ? boost::asio::ip::address(boost::asio::ip::address_v4(0x0A050000u | (rng() & 0xffff)))
                         : addr("fd00:5::");
      if (!v4) {
        auto b = address.to_v6().to_bytes();
        for (int k = 8; k < 16; ++k) b[k] = static_cast<std::uint8_t>(rng() % 4);
        address = boost::asio::ip::address_v6(b);
      }
      const auto p = net::Prefix::covering(address, length);
      const std::uint64_t expires = rng() % 3 == 0 ? 100 : (rng() % 2 ? 0 : 10'000);
      std::string error;
      ASSERT_TRUE(map.put({p, expires, 0}, error));
      index.put(p, expires);
    }
    for (int i = 0; i < 500; ++i) {
      auto b4 = boost::asio::ip::address_v4(0x0A050000u | (rng() & 0xffff));
      auto b6 = addr("fd00:5::").to_v6().to_bytes();
      for (int k = 8; k < 16; ++k) b6[k] = static_cast<std::uint8_t>(rng() % 4);
      for (boost::asio::ip::address a : {boost::asio::ip::address(b4),
                                         boost::asio::ip::address(boost::asio::ip::address_v6(b6))}) {
        auto want = ban_in_force(map, a, 1000);
        auto got = index.match(a, 1000);
        // The ban that holds as text, "" for none: one comparison, whichever it is.
        ASSERT_EQ(want ? want->prefix.str() : "", got ? got->str() : "") << a.to_string();
      }
    }
  }
}

}  // namespace
}  // namespace snigate::bans::testing
