// Counting failures into bans: maxretry within findtime, ignoreip, IPv6 prefixes, and
// bantime_increment from the ban history.
#include <gtest/gtest.h>

#include <optional>
#include <set>

#include "net/local_address.h"
#include "watch/jail.h"

namespace snigate::watch {
namespace {

using boost::asio::ip::make_address;
using namespace std::chrono_literals;

struct Recorder {
  std::vector<bans::BanRequest> bans;
  BanSink sink() {
    return [this](const bans::BanRequest& r) { bans.push_back(r); };
  }
};

JailConfig config() {
  JailConfig c;
  c.name = "web";
  c.maxretry = 3;
  c.findtime = 60s;
  c.bantime = 600s;
  return c;
}

TEST(Jail, BansOnTheFailureThatReachesMaxretryWithinFindtime) {
  Recorder rec;
  Jail jail(config(), rec.sink());
  auto t0 = bans::Clock::now();
  auto ip = make_address("192.0.2.7");
  EXPECT_FALSE(jail.add_failure(ip, t0, "l1"));
  EXPECT_FALSE(jail.add_failure(ip, t0 + 61s, "l2"));  // the first one fell out of findtime
  EXPECT_FALSE(jail.add_failure(ip, t0 + 62s, "l3"));
  EXPECT_TRUE(jail.add_failure(ip, t0 + 63s, "l4"));
  ASSERT_EQ(rec.bans.size(), 1u);
  const auto& b = rec.bans[0];
  EXPECT_EQ(b.prefix.str(), "192.0.2.7");
  EXPECT_EQ(b.duration, std::chrono::seconds(600));
  EXPECT_EQ(b.jail, "web");
  EXPECT_EQ(b.source, "jail:web");
  EXPECT_EQ(b.sample, "l4");
  EXPECT_EQ(b.matched_at, t0 + 63s);
  // While banned, further lines do not ban again.
  EXPECT_FALSE(jail.add_failure(ip, t0 + 64s, "l5"));
  EXPECT_EQ(rec.bans.size(), 1u);
}

TEST(Jail, IgnoreipAndMappedAddresses) {
  Recorder rec;
  auto c = config();
  c.maxretry = 1;
  c.ignoreip = {*net::Prefix::parse("192.0.2.0/24")};
  Jail jail(c, rec.sink());
  auto now = bans::Clock::now();
  EXPECT_FALSE(jail.add_failure(make_address("::ffff:192.0.2.8"), now, "x"));
  EXPECT_TRUE(jail.add_failure(make_address("::ffff:198.51.100.1"), now, "x"));
  ASSERT_EQ(rec.bans.size(), 1u);
  EXPECT_EQ(rec.bans[0].prefix.str(), "198.51.100.1");
}

TEST(Jail, IPv6ClientsAreCountedAndBannedPerPrefix) {
  Recorder rec;
  auto c = config();
  c.ban_prefix_v6 = 64;
  Jail jail(c, rec.sink());
  auto now = bans::Clock::now();
  jail.add_failure(make_address("2001:db8:1:2::1"), now, "a");
  jail.add_failure(make_address("2001:db8:1:2::2"), now, "b");
  EXPECT_TRUE(jail.add_failure(make_address("2001:db8:1:2:ffff::3"), now, "c"));
  ASSERT_EQ(rec.bans.size(), 1u);
  EXPECT_EQ(rec.bans[0].prefix.str(), "2001:db8:1:2::/64");
}

TEST(Jail, BantimeIncrementUsesHistoryAndCap) {
  Recorder rec;
  auto c = config();
  c.maxretry = 1;
  c.bantime = 60s;
  c.bantime_increment = BantimeIncrement{2.0, 200s};
  Jail own(c, rec.sink());
  auto t = bans::Clock::now();
  auto ip = make_address("203.0.113.5");
  own.add_failure(ip, t, "x");
  own.add_failure(ip, t + 61s, "x");
  own.add_failure(ip, t + 200s, "x");
  ASSERT_EQ(rec.bans.size(), 3u);
  EXPECT_EQ(rec.bans[0].duration, std::chrono::seconds(60));
  EXPECT_EQ(rec.bans[1].duration, std::chrono::seconds(120));
  EXPECT_EQ(rec.bans[2].duration, std::chrono::seconds(200));  // 240 capped

  Jail shared(c, rec.sink(), [](const net::Prefix&) { return 1u; });
  EXPECT_EQ(shared.next_bantime(net::Prefix::host(ip)), std::chrono::seconds(120));
}

// fail2ban's ignoreself, on by default: a forged line naming the host itself (any of
// 127.0.0.0/8, ::1, an interface address) bans nothing, or every local client would be cut off.
TEST(Jail, IgnoreselfNeverBansTheHostsOwnAddresses) {
  Recorder rec;
  auto c = config();
  c.maxretry = 1;
  Jail jail(c, rec.sink());
  auto now = bans::Clock::now();
  for (const char* self : {"127.0.0.1", "127.0.0.53", "127.255.0.9", "::1", "::ffff:127.0.0.1"})
    EXPECT_FALSE(jail.add_failure(make_address(self), now, "x")) << self;
  for (const auto& own : net::interface_addresses())
    EXPECT_FALSE(jail.add_failure(own, now, "x")) << own;
  EXPECT_TRUE(rec.bans.empty());
  EXPECT_TRUE(jail.add_failure(make_address("192.0.2.9"), now, "x"));

  c.ignoreself = false;  // the operator's choice: bans them like any client
  Jail unprotected(c, rec.sink());
  EXPECT_TRUE(unprotected.add_failure(make_address("127.0.0.1"), now, "x"));
}

// An IPv6 ban of a /64 that holds one of the host's own addresses would cut the host off too.
TEST(Jail, IgnoreselfRefusesAPrefixBanCoveringAnOwnAddress) {
  std::optional<boost::asio::ip::address> own6;
  for (const auto& a : net::interface_addresses())
    if (a.is_v6() && !a.is_loopback() && !a.to_v6().is_link_local()) own6 = a;
  if (!own6) GTEST_SKIP() << "SKIPPED: this host has no global IPv6 address to share a /64 with";
  Recorder rec;
  auto c = config();
  c.maxretry = 1;
  c.ban_prefix_v6 = 64;
  Jail jail(c, rec.sink());
  auto neighbour = own6->to_v6().to_bytes();
  neighbour[15] ^= 1;
  EXPECT_FALSE(jail.add_failure(boost::asio::ip::address_v6(neighbour), bans::Clock::now(), "x"));
  EXPECT_TRUE(rec.bans.empty());
}

// `snigatectl unban` of an address a jail banned: its next failures ban it again at maxretry,
// not only once the lifted ban's bantime would have ended.
TEST(Jail, UnbanLetsNewFailuresBanAgain) {
  Recorder rec;
  std::set<boost::asio::ip::address> banned;
  Jail jail(config(), [&](const bans::BanRequest& r) {
    rec.bans.push_back(r);
    banned.insert(r.prefix.address());
  }, {}, [&](const boost::asio::ip::address& a) { return banned.count(a) > 0; });
  auto t = bans::Clock::now();
  auto ip = make_address("192.0.2.33");
  for (int i = 0; i < 3; ++i) jail.add_failure(ip, t, "x");
  ASSERT_EQ(rec.bans.size(), 1u);
  EXPECT_FALSE(jail.add_failure(ip, t + 1s, "in flight"));  // still banned: not counted
  banned.clear();                                         // the operator lifts it
  EXPECT_FALSE(jail.add_failure(ip, t + 2s, "a"));
  EXPECT_FALSE(jail.add_failure(ip, t + 3s, "b"));
  EXPECT_TRUE(jail.add_failure(ip, t + 4s, "c"));
  EXPECT_EQ(rec.bans.size(), 2u);
}

}  // namespace
}  // namespace snigate::watch
