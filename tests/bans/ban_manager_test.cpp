// BanManager over the fake map: what a ban refuses, for how long, and what it ends.
#include <atomic>
#include <algorithm>
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <limits>

#include "test_support.h"

namespace snigate::bans::testing {
namespace {

using namespace std::chrono_literals;

class BanManagerTest : public ::testing::Test {
 protected:
  void SetUp() override { manager = open_manager(pins, dir.file("bans.db"), clock, &registry); }

  ScratchDir dir;
  std::shared_ptr<FakeBanMap> pins = std::make_shared<FakeBanMap>();
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
  conns::ConnRegistry registry;
  std::unique_ptr<BanManager> manager;
};

TEST_F(BanManagerTest, BanRefusesThatAddressOnlyAndCountsDrops) {
  auto out = manager->ban(request("10.5.1.1"));
  ASSERT_TRUE(out.ok) << out.error;
  EXPECT_TRUE(out.stored);
  EXPECT_TRUE(manager->banned(addr("10.5.1.1")));
  EXPECT_TRUE(manager->banned(addr("::ffff:10.5.1.1")));  // a dual-stack listener's view
  EXPECT_FALSE(manager->banned(addr("10.5.1.2")));
  EXPECT_TRUE(pins->packet_from(addr("10.5.1.1"), clock->boot_ns()));
  EXPECT_FALSE(pins->packet_from(addr("10.5.1.2"), clock->boot_ns()));

  auto bans = manager->list();
  ASSERT_EQ(bans.size(), 1u);
  EXPECT_EQ(bans[0].prefix.str(), "10.5.1.1");
  EXPECT_EQ(bans[0].drops, 3u);  // two refusals at accept time, one packet
  EXPECT_FALSE(bans[0].expires);
  EXPECT_EQ(manager->totals().refused_at_accept, 2u);
}

TEST_F(BanManagerTest, CidrBanCoversItsPrefixInBothFamilies) {
  ASSERT_TRUE(manager->ban(request("10.5.2.0/24")).ok);
  ASSERT_TRUE(manager->ban(request("fd00:5::/64")).ok);
  EXPECT_TRUE(manager->banned(addr("10.5.2.1")));
  EXPECT_TRUE(manager->banned(addr("10.5.2.254")));
  EXPECT_FALSE(manager->banned(addr("10.5.3.1")));
  EXPECT_TRUE(manager->banned(addr("fd00:5::b")));
  EXPECT_FALSE(manager->banned(addr("fd00:5:0:1::b")));
}

TEST_F(BanManagerTest, ExpiryLiftsOnTimeAndTheSweeperRemovesIt) {
  ASSERT_TRUE(manager->ban(request("10.5.1.1", 2s)).ok);
  clock->advance(1900ms);
  EXPECT_TRUE(manager->banned(addr("10.5.1.1")));
  clock->advance(200ms);
  // Lifted by the expiry rule alone, before any sweep.
  EXPECT_FALSE(manager->banned(addr("10.5.1.1")));
  EXPECT_FALSE(pins->packet_from(addr("10.5.1.1"), clock->boot_ns()));
  EXPECT_TRUE(manager->list().empty());
  EXPECT_EQ(pins->entries().size(), 1u);
  EXPECT_EQ(manager->sweep(), 1u);
  EXPECT_TRUE(pins->entries().empty());
  EXPECT_EQ(manager->totals().active, 0u);
}

// Many bans expiring at once: lifted in batches (the store in sync), with one summary log
// line instead of one per ban, and a ban made again before its sweep is left alone.
TEST_F(BanManagerTest, MassExpiryIsOneSummaryLineAndKeepsTheStoreInSync) {
  auto lines = std::make_shared<std::ostringstream>();
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(*lines)));
  for (int i = 0; i < 1100; ++i) {
    const std::string p = "10.7." + std::to_string(i / 256) + "." + std::to_string(i % 256);
    ASSERT_TRUE(manager->ban(request(p.c_str(), 1s)).ok);
  }
  ASSERT_TRUE(manager->ban(request("10.8.0.1", 1h)).ok);
  clock->advance(2s);
  ASSERT_TRUE(manager->ban(request("10.7.0.5", 1h)).ok);  // again, before the sweep
  lines->str("");
  EXPECT_EQ(manager->sweep(), 1099u);
  spdlog::set_default_logger(previous);
  const std::string log = lines->str();
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log.substr(0, 2000);
  EXPECT_NE(log.find("1099 ban(s) expired and lifted"), std::string::npos) << log;
  EXPECT_NE(log.find("2 left in force"), std::string::npos) << log;
  EXPECT_TRUE(manager->banned(addr("10.7.0.5")));
  EXPECT_FALSE(manager->banned(addr("10.7.0.6")));
  EXPECT_EQ(manager->totals().active, 2u);
  // The store agrees: a manager opened on it restores exactly the two.
  manager.reset();
  auto fresh = std::make_shared<FakeBanMap>();
  auto reopened = open_manager(fresh, dir.file("bans.db"), clock);
  EXPECT_EQ(reopened->reconciled().restored_to_map, 2u);
  EXPECT_EQ(reopened->reconciled().expired, 0u);
}

TEST_F(BanManagerTest, ExpiredHostBanDoesNotHideALiveNetworkBan) {
  ASSERT_TRUE(manager->ban(request("10.5.2.0/24", 1h)).ok);
  ASSERT_TRUE(manager->ban(request("10.5.2.7", 1s)).ok);
  clock->advance(2s);
  EXPECT_TRUE(manager->banned(addr("10.5.2.7")));
  auto bans = manager->list();
  ASSERT_EQ(bans.size(), 1u);
  EXPECT_EQ(bans[0].prefix.str(), "10.5.2.0/24");
  EXPECT_EQ(bans[0].drops, 1u);
}

TEST_F(BanManagerTest, UnbanRestoresAccess) {
  ASSERT_TRUE(manager->ban(request("fd00:5::a")).ok);
  EXPECT_TRUE(manager->banned(addr("fd00:5::a")));
  EXPECT_TRUE(manager->unban(prefix("fd00:5::a")));
  EXPECT_FALSE(manager->banned(addr("fd00:5::a")));
  EXPECT_FALSE(manager->unban(prefix("fd00:5::a")));
  EXPECT_TRUE(manager->list().empty());
}

TEST_F(BanManagerTest, RefusesBadRequestsWithAdvice) {
  auto ignored = manager->ban(request("198.51.100.7"));
  EXPECT_FALSE(ignored.ok);
  EXPECT_NE(ignored.error.find("--force"), std::string::npos) << ignored.error;
  auto wider = manager->ban(request("198.51.0.0/16"));  // would cover the ignored network
  EXPECT_FALSE(wider.ok);
  EXPECT_FALSE(manager->ban(request("0.0.0.0/0")).ok);
  EXPECT_FALSE(manager->ban(request("10.5.1.1", 0s)).ok);
  EXPECT_TRUE(pins->entries().empty());

  auto forever = manager->ban(request("10.5.1.1", std::chrono::seconds(9999999999)));
  EXPECT_FALSE(forever.ok);
  EXPECT_NE(forever.error.find("longest timed ban (3650d)"), std::string::npos) << forever.error;
  auto late = request("10.5.1.1", 1h);
  late.matched_at = Clock::time_point(std::chrono::seconds(std::numeric_limits<std::int32_t>::max()) * 8);
  EXPECT_FALSE(manager->ban(late).ok);
  EXPECT_TRUE(pins->entries().empty());

  auto forced = request("198.51.100.7");
  forced.force = true;
  EXPECT_TRUE(manager->ban(forced).ok);
  EXPECT_TRUE(manager->banned(addr("198.51.100.7")));
}

TEST_F(BanManagerTest, BanEndsTheClientsLiveConnectionsOnly) {
  std::atomic<int> killed_a{0}, killed_b{0}, killed_c{0};
  auto add = [&](std::uint64_t id, const char* client, std::atomic<int>& killed) {
    conns::ConnInfo info;
    info.id = id;
    info.client = addr(client);
    registry.add(info, [&killed](conns::KillReason) { ++killed; });
  };
  add(1, "10.5.2.9", killed_a);
  add(2, "::ffff:10.5.2.10", killed_b);  // dual-stack listener, or learnt from PROXY
  add(3, "10.5.3.1", killed_c);
  auto out = manager->ban(request("10.5.2.0/24"));
  ASSERT_TRUE(out.ok);
  EXPECT_EQ(out.connections_closed, 2u);
  EXPECT_EQ(killed_a, 1);
  EXPECT_EQ(killed_b, 1);
  EXPECT_EQ(killed_c, 0);
}

TEST_F(BanManagerTest, RepeatOffendersGetLongerBansUpToTheCap) {
  auto expires_in = [&](const BanOutcome& out) {
    return std::chrono::duration_cast<std::chrono::seconds>(*out.entry.expires - clock->wall());
  };
  auto first = manager->ban(request("10.5.1.1", 1h));
  EXPECT_EQ(first.entry.offences, 1u);
  EXPECT_EQ(expires_in(first), 1h);
  ASSERT_TRUE(manager->unban(prefix("10.5.1.1")));
  auto second = manager->ban(request("10.5.1.1", 1h));
  EXPECT_EQ(second.entry.offences, 2u);
  EXPECT_EQ(expires_in(second), 2h);
  clock->advance(3h);
  manager->sweep();
  auto third = manager->ban(request("10.5.1.1", 1h));
  EXPECT_EQ(third.entry.offences, 3u);
  EXPECT_EQ(expires_in(third), 4h);
  EXPECT_EQ(manager->history_count(prefix("10.5.1.1")), 3u);

  // The operator's own duration stands.
  auto by_hand = manager->ban(request("10.5.1.1", 1h, "ctl"));
  EXPECT_EQ(expires_in(by_hand), 1h);
  // Capped at repeat_max (30 days by default), never shorter than asked.
  for (int i = 0; i < 12; ++i) manager->ban(request("10.5.1.1", 1h));
  EXPECT_EQ(expires_in(manager->ban(request("10.5.1.1", 1h))), std::chrono::hours(24 * 30));
  EXPECT_EQ(expires_in(manager->ban(request("10.5.1.1", std::chrono::hours(24 * 60)))),
            std::chrono::hours(24 * 60));
}

// A watcher that resends a ban whose reply it lost sends the same id: one ban, one offence,
// however many copies arrive. A new id for the same prefix is a new offence, as before.
TEST_F(BanManagerTest, RetriedDeliveryWithTheSameIdIsOneOffence) {
  auto first = request("10.5.9.9", 1h, "remote:192.0.2.1");
  first.id = "6f1c0c4e9d2a4b7e8f00112233445566";
  auto made = manager->ban(first);
  ASSERT_TRUE(made.ok) << made.error;
  clock->advance(5s);
  for (int i = 0; i < 3; ++i) {
    auto again = manager->ban(first);
    ASSERT_TRUE(again.ok) << again.error;
    EXPECT_EQ(again.entry.offences, 1u);
    EXPECT_EQ(again.entry.expires, made.entry.expires);  // not escalated to 2h, 4h, ...
  }
  EXPECT_EQ(manager->history_count(prefix("10.5.9.9")), 1u);
  auto other = first;
  other.id = "another-delivery";
  auto second = manager->ban(other);
  ASSERT_TRUE(second.ok);
  EXPECT_EQ(second.entry.offences, 2u);
}

TEST_F(BanManagerTest, RebanKeepsTheDropCountAndReplacesTheExpiry) {
  ASSERT_TRUE(manager->ban(request("10.5.1.1", 10s)).ok);
  pins->packet_from(addr("10.5.1.1"), clock->boot_ns());
  ASSERT_TRUE(manager->ban(request("10.5.1.1", 1h, "ctl")).ok);
  clock->advance(30s);
  auto bans = manager->list();
  ASSERT_EQ(bans.size(), 1u);
  EXPECT_EQ(bans[0].drops, 1u);
  EXPECT_TRUE(manager->banned(addr("10.5.1.1")));
}

}  // namespace
}  // namespace snigate::bans::testing
