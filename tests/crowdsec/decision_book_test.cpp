// What the bouncer does with each stream answer: which prefixes are banned, for how long,
// under which source, and which are lifted.
#include <gtest/gtest.h>

#include "crowdsec/decision_book.h"

namespace snigate::crowdsec {
namespace {

using namespace std::chrono_literals;

const bans::Clock::time_point kNow = bans::Clock::time_point(std::chrono::seconds(1'800'000'000));

Decision decision(std::int64_t id, std::string value, std::chrono::milliseconds duration,
                  std::string origin = "cscli", std::string scope = "Ip") {
  Decision d;
  d.id = id;
  d.type = "ban";
  d.scope = std::move(scope);
  d.value = std::move(value);
  d.origin = std::move(origin);
  d.scenario = "crowdsecurity/ssh-bf";
  d.duration = duration;
  return d;
}

StreamBody added(std::vector<Decision> d) { return StreamBody{std::move(d), {}, 0}; }
StreamBody deleted(std::vector<Decision> d) { return StreamBody{{}, std::move(d), 0}; }
net::Prefix prefix(const char* text) { return *net::Prefix::parse(text); }

TEST(DecisionBook, StartupBansEveryPrefixWithItsRemainingTimeAndOrigin) {
  DecisionBook book{DecisionFilter{}};
  auto changes = book.resync(added({decision(1, "10.5.1.10", 3h + 59min + 58500ms),
                                     decision(2, "10.5.1.16/28", 60s, "crowdsec", "Range"),
                                     decision(3, "fd00:5:1::a", 10s, "CAPI"),
                                     decision(4, "FR", 10s, "cscli", "Country")}),
                             kNow, {});
  ASSERT_EQ(changes.bans.size(), 3u);
  EXPECT_EQ(changes.skipped, 1u);
  EXPECT_TRUE(changes.lifts.empty());
  auto ban_of = [&](const char* text) {
    for (const auto& b : changes.bans)
      if (b.prefix == prefix(text)) return b;
    ADD_FAILURE() << text << " not banned";
    return bans::BanRequest{};
  };
  const auto v4 = ban_of("10.5.1.10");
  EXPECT_EQ(v4.source, "crowdsec:cscli");
  EXPECT_EQ(v4.reason, "crowdsecurity/ssh-bf");
  EXPECT_EQ(v4.duration, std::chrono::seconds(4 * 3600 - 1));  // rounded up, never short
  EXPECT_EQ(ban_of("10.5.1.16/28").source, "crowdsec:crowdsec");
  EXPECT_EQ(ban_of("fd00:5:1::a").source, "crowdsec:CAPI");
  EXPECT_EQ(ban_of("fd00:5:1::a").duration, 10s);
  EXPECT_EQ(book.decisions(), 3u);
}

TEST(DecisionBook, ResyncLiftsWhatTheAnswerNoLongerHas) {
  DecisionBook book{DecisionFilter{}};
  auto changes = book.resync(added({decision(1, "10.5.1.10", 60s)}), kNow,
                             {prefix("10.5.1.10"), prefix("10.5.1.11"), prefix("fd00::/64")});
  EXPECT_EQ(changes.bans.size(), 1u);
  EXPECT_EQ(changes.lifts, (std::vector<net::Prefix>{prefix("10.5.1.11"), prefix("fd00::/64")}));
}

// A later full pull bans every prefix again; the new ones are those the book lacked (a decision
// the deltas missed), whoever else holds a ban on the others.
TEST(DecisionBook, ResyncCountsThePrefixesTheBookLacked) {
  DecisionBook book{DecisionFilter{}};
  EXPECT_EQ(book.resync(added({decision(1, "10.5.1.10", 60s)}), kNow, {}).new_prefixes, 1u);
  auto changes = book.resync(added({decision(1, "10.5.1.10", 60s), decision(2, "10.5.1.12", 60s),
                                    decision(3, "10.5.1.12", 90s)}),
                             kNow, {});
  EXPECT_EQ(changes.bans.size(), 2u);
  EXPECT_EQ(changes.new_prefixes, 1u);
  EXPECT_EQ(book.resync(added({}), kNow, {}).new_prefixes, 0u);
}

TEST(DecisionBook, DeltaDeleteLiftsAndNewBans) {
  DecisionBook book{DecisionFilter{}};
  book.resync(added({decision(1, "10.5.1.10", 60s)}), kNow, {});
  auto changes = book.apply(StreamBody{{decision(2, "10.5.1.11", 30s)},
                                       {decision(1, "10.5.1.10", -11ms)}, 0},
                            kNow + 5s);
  EXPECT_EQ(changes.lifts, std::vector<net::Prefix>{prefix("10.5.1.10")});
  ASSERT_EQ(changes.bans.size(), 1u);
  EXPECT_EQ(changes.bans[0].prefix.str(), "10.5.1.11");
  EXPECT_EQ(changes.bans[0].duration, 30s);
  // A deletion of something never taken (filtered out, or from before a resync) changes nothing.
  changes = book.apply(deleted({decision(99, "10.5.1.12", -1s)}), kNow + 6s);
  EXPECT_TRUE(changes.lifts.empty());
  EXPECT_TRUE(changes.bans.empty());
}

// Two decisions on one address: it stays banned until the last one ends or goes.
TEST(DecisionBook, APrefixHoldsUntilItsLastDecisionGoes) {
  DecisionBook book{DecisionFilter{}};
  book.resync(added({decision(1, "10.5.1.10", 600s)}), kNow, {});
  auto changes = book.apply(added({decision(2, "10.5.1.10", 60s, "crowdsec")}), kNow);
  EXPECT_TRUE(changes.bans.empty());  // ends before the ban in force: nothing to do
  changes = book.apply(added({decision(3, "10.5.1.10", 3600s, "crowdsec")}), kNow);
  ASSERT_EQ(changes.bans.size(), 1u);
  EXPECT_EQ(changes.bans[0].duration, 3600s);
  EXPECT_EQ(changes.bans[0].source, "crowdsec:crowdsec");

  changes = book.apply(deleted({decision(3, "10.5.1.10", 0ms)}), kNow + 10s);
  EXPECT_TRUE(changes.lifts.empty());
  ASSERT_EQ(changes.bans.size(), 1u);  // back to the longest one left
  EXPECT_EQ(changes.bans[0].duration, 590s);
  EXPECT_EQ(changes.bans[0].source, "crowdsec:cscli");
  changes = book.apply(deleted({decision(1, "10.5.1.10", 0ms), decision(2, "10.5.1.10", 0ms)}), kNow + 20s);
  EXPECT_EQ(changes.lifts, std::vector<net::Prefix>{prefix("10.5.1.10")});
  EXPECT_EQ(book.prefixes(), 0u);
}

TEST(DecisionBook, FiltersAndNonBansAreSkipped) {
  DecisionBook book{DecisionFilter{{"Ip"}, {"crowdsec"}, {}}};
  auto captcha = decision(3, "10.5.1.12", 60s, "crowdsec");
  captcha.type = "captcha";
  auto changes = book.resync(added({decision(1, "10.5.1.10", 60s, "cscli"),
                                    decision(2, "10.5.1.16/28", 60s, "crowdsec", "Range"),
                                    captcha, decision(4, "10.5.1.13", 60s, "crowdsec"),
                                    decision(5, "10.5.1.14", 0ms, "crowdsec")}),
                             kNow, {});
  ASSERT_EQ(changes.bans.size(), 1u);
  EXPECT_EQ(changes.bans[0].prefix.str(), "10.5.1.13");
  EXPECT_EQ(changes.skipped, 4u);
  changes = book.apply(added({decision(6, "10.5.1.15", 60s, "cscli")}), kNow);
  EXPECT_TRUE(changes.bans.empty());
  EXPECT_EQ(changes.skipped, 1u);
}

}  // namespace
}  // namespace snigate::crowdsec
