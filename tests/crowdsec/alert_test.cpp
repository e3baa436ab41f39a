// A jail's ban as the alert LAPI takes (the shape crowdsec 1.4.6 accepted in a by-hand
// POST /v1/alerts, its decision then in `cscli decisions list --origin snigate`).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "crowdsec/alert.h"

namespace snigate::crowdsec {
namespace {

using namespace std::chrono_literals;

const bans::Clock::time_point kNow = bans::Clock::time_point(std::chrono::seconds(1'800'000'000));

bans::BanEntry jail_ban() {
  bans::BanEntry e;
  e.prefix = *net::Prefix::parse("10.5.1.10");
  e.created = kNow;
  e.expires = kNow + 600s;
  e.source = "jail:sshd";
  e.jail = "sshd";
  e.reason = "5 failures in 600s";
  e.sample = "Failed password for root from 10.5.1.10 port 22 ssh2";
  e.matched_at = kNow - 2s;
  return e;
}

TEST(Alert, AJailBanCarriesItsDecisionSampleAndScenario) {
  auto a = alert_json(jail_ban(), kNow + 10s);
  EXPECT_EQ(a["scenario"], "sshd");
  EXPECT_EQ(a["source"]["scope"], "Ip");
  EXPECT_EQ(a["source"]["value"], "10.5.1.10");
  EXPECT_EQ(a["source"]["ip"], "10.5.1.10");
  EXPECT_EQ(a["start_at"], "2027-01-15T07:59:58Z");  // when the log line said it happened
  EXPECT_EQ(a["stop_at"], "2027-01-15T08:00:00Z");
  EXPECT_EQ(a["events"][0]["meta"][0]["key"], "log_line");
  EXPECT_EQ(a["events"][0]["meta"][0]["value"], "Failed password for root from 10.5.1.10 port 22 ssh2");
  EXPECT_EQ(a["remediation"], true);
  ASSERT_EQ(a["decisions"].size(), 1u);
  const auto& d = a["decisions"][0];
  EXPECT_EQ(d["duration"], "590s");  // what is left of the ban, not the jail's bantime again
  EXPECT_EQ(d["origin"], "snigate");
  EXPECT_EQ(d["type"], "ban");
  EXPECT_EQ(d["scope"], "Ip");
  EXPECT_EQ(d["value"], "10.5.1.10");
  EXPECT_EQ(d["scenario"], "sshd");
}

TEST(Alert, RangesAndPermanentOperatorBans) {
  auto e = jail_ban();
  e.prefix = *net::Prefix::parse("2001:db8::/64");
  e.jail.clear();
  e.source = "ctl";
  e.expires.reset();
  auto a = alert_json(e, kNow);
  EXPECT_EQ(a["scenario"], "snigatectl");
  EXPECT_EQ(a["source"]["scope"], "Range");
  EXPECT_EQ(a["source"]["range"], "2001:db8::/64");
  EXPECT_EQ(a["decisions"][0]["scope"], "Range");
  EXPECT_EQ(a["decisions"][0]["duration"], "315360000s");  // ten years stands for permanent
}

}  // namespace
}  // namespace snigate::crowdsec
