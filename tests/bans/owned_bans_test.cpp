// BanManager::apply_owned: a family of bans kept in step with an outside authority (the
// CrowdSec bouncer) makes and lifts its own bans only, in bulk.
#include "test_support.h"

namespace snigate::bans::testing {
namespace {

using namespace std::chrono_literals;

class OwnedBansTest : public ::testing::Test {
 protected:
  void SetUp() override { manager = open_manager(pins, dir.file("bans.db"), clock); }

  const BanEntry* listed(const char* text) {
    entries = manager->list();
    for (const auto& e : entries)
      if (e.prefix == prefix(text)) return &e;
    return nullptr;
  }

  ScratchDir dir;
  std::shared_ptr<FakeBanMap> pins = std::make_shared<FakeBanMap>();
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
  std::unique_ptr<BanManager> manager;
  std::vector<BanEntry> entries;
};

TEST_F(OwnedBansTest, BansAndLiftsItsOwnWithTheirDurations) {
  auto change = manager->apply_owned(
      "crowdsec:", {request("10.5.1.10", 3600s, "crowdsec:cscli"), request("fd00:5::/64", 60s, "crowdsec:crowdsec")},
      {});
  EXPECT_EQ(change.banned, 2u);
  EXPECT_TRUE(pins->packet_from(addr("10.5.1.10"), clock->boot_ns()));
  EXPECT_TRUE(pins->packet_from(addr("fd00:5::9"), clock->boot_ns()));
  const auto* e = listed("10.5.1.10");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->source, "crowdsec:cscli");
  EXPECT_EQ(*e->expires - e->created, 3600s);
  EXPECT_EQ(manager->held_by("crowdsec:").size(), 2u);

  change = manager->apply_owned("crowdsec:", {}, {prefix("10.5.1.10")});
  EXPECT_EQ(change.lifted, 1u);
  EXPECT_FALSE(pins->packet_from(addr("10.5.1.10"), clock->boot_ns()));
  EXPECT_FALSE(manager->banned(addr("10.5.1.10")));
  EXPECT_TRUE(manager->banned(addr("fd00:5::9")));
}

// A repeat offender of the jails gets escalated bans; the authority's durations are its own.
TEST_F(OwnedBansTest, NoRepeatOffenderEscalation) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(manager->apply_owned("crowdsec:", {request("10.5.1.10", 60s, "crowdsec:cscli")}, {}).banned, 1u);
    ASSERT_EQ(manager->apply_owned("crowdsec:", {}, {prefix("10.5.1.10")}).lifted, 1u);
  }
  manager->apply_owned("crowdsec:", {request("10.5.1.10", 60s, "crowdsec:cscli")}, {});
  const auto* e = listed("10.5.1.10");
  ASSERT_TRUE(e);
  EXPECT_EQ(*e->expires - e->created, 60s);
  EXPECT_EQ(e->offences, 4u);
}

TEST_F(OwnedBansTest, AnotherSourcesBanIsNeitherReplacedNorLifted) {
  ASSERT_TRUE(manager->ban(request("10.5.1.10", {}, "ctl")).ok);
  auto change = manager->apply_owned("crowdsec:", {request("10.5.1.10", 60s, "crowdsec:cscli")}, {});
  EXPECT_EQ(change.kept, 1u);
  EXPECT_EQ(change.banned, 0u);
  change = manager->apply_owned("crowdsec:", {}, {prefix("10.5.1.10")});
  EXPECT_EQ(change.lifted, 0u);
  const auto* e = listed("10.5.1.10");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->source, "ctl");
  EXPECT_FALSE(e->expires);  // still the permanent ban snigatectl made
  EXPECT_TRUE(pins->packet_from(addr("10.5.1.10"), clock->boot_ns()));

  // And the other way: a local ban made over a CrowdSec one is the local one from then on.
  manager->apply_owned("crowdsec:", {request("10.5.1.11", 60s, "crowdsec:cscli")}, {});
  ASSERT_TRUE(manager->ban(request("10.5.1.11", {}, "ctl")).ok);
  EXPECT_EQ(manager->apply_owned("crowdsec:", {}, {prefix("10.5.1.11")}).lifted, 0u);
  EXPECT_TRUE(manager->banned(addr("10.5.1.11")));
}

TEST_F(OwnedBansTest, TheSameExpiryAgainWritesNothing) {
  manager->apply_owned("crowdsec:", {request("10.5.1.10", 600s, "crowdsec:cscli")}, {});
  clock->advance(1s);
  auto change = manager->apply_owned("crowdsec:", {request("10.5.1.10", 599s, "crowdsec:cscli")}, {});
  EXPECT_EQ(change.unchanged, 1u);
  EXPECT_EQ(manager->history_count(prefix("10.5.1.10")), 1u);
  change = manager->apply_owned("crowdsec:", {request("10.5.1.10", 1200s, "crowdsec:cscli")}, {});
  EXPECT_EQ(change.banned, 1u);
}

TEST_F(OwnedBansTest, RefusesWhatBanRefusesAndSaysWhy) {
  auto change = manager->apply_owned(
      "crowdsec:", {request("198.51.100.7", 60s, "crowdsec:cscli"), request("10.5.1.10", 60s, "crowdsec:cscli")}, {});
  EXPECT_EQ(change.refused, 1u);
  EXPECT_NE(change.first_refusal.find("[bans] ignore"), std::string::npos) << change.first_refusal;
  EXPECT_EQ(change.banned, 1u);
}

// After a restart the store brings the family's bans back, and held_by() names them, so a
// resync can lift the ones the authority no longer has.
TEST_F(OwnedBansTest, HeldByAfterARestart) {
  manager->apply_owned("crowdsec:", {request("10.5.1.10", 600s, "crowdsec:cscli")}, {});
  ASSERT_TRUE(manager->ban(request("10.5.1.11", 600s, "jail:sshd")).ok);
  manager.reset();
  manager = open_manager(pins, dir.file("bans.db"), clock);
  auto held = manager->held_by("crowdsec:");
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0], prefix("10.5.1.10"));
}

// Many at once (a startup pull) go in slices, each its own lock hold and transaction: every
// ban and lift of every slice lands, and the store has them all after a restart.
TEST_F(OwnedBansTest, ThousandsAtOnceAllLandAcrossSlices) {
  auto host = [](std::uint32_t i) {
    return net::Prefix::host(boost::asio::ip::address_v4(0x0A400000u + i));
  };
  std::vector<BanRequest> first, second;
  std::vector<net::Prefix> lifts;
  for (std::uint32_t i = 0; i < 4500; ++i) {
    BanRequest r;
    r.prefix = host(i);
    r.duration = 3600s;
    r.source = "crowdsec:cscli";
    first.push_back(r);
    r.prefix = host(10000 + i);
    second.push_back(r);
  }
  for (std::uint32_t i = 0; i < 2500; ++i) lifts.push_back(host(i));
  EXPECT_EQ(manager->apply_owned("crowdsec:", first, {}).banned, 4500u);
  auto change = manager->apply_owned("crowdsec:", second, lifts);
  EXPECT_EQ(change.banned, 4500u);
  EXPECT_EQ(change.lifted, 2500u);
  EXPECT_FALSE(manager->banned(addr("10.64.0.0")));
  EXPECT_TRUE(manager->banned(boost::asio::ip::address_v4(0x0A400000u + 4499)));
  manager.reset();
  manager = open_manager(pins, dir.file("bans.db"), clock);
  EXPECT_EQ(manager->held_by("crowdsec:").size(), 6500u);
}

}  // namespace
}  // namespace snigate::bans::testing
