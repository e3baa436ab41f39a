// LAPI's stream answers read into decisions, their prefixes, and the [crowdsec] filters.
#include <gtest/gtest.h>

#include "crowdsec/decision.h"

namespace snigate::crowdsec {
namespace {

using namespace std::chrono_literals;

// Captured from crowdsec 1.4.6 (Debian 12) after `cscli decisions add --ip`, `--range`, and
// an IPv6 `--ip`, then `cscli decisions delete --ip 10.5.1.10`.
constexpr const char* kStartup =
    R"({"deleted":null,"new":[{"duration":"59m59.040721152s","id":1,"origin":"cscli","scenario":"manual 'ban' from 'tester'","scope":"Ip","type":"ban","value":"10.5.1.10"},)"
    R"({"duration":"59m59.0407185s","id":2,"origin":"cscli","scenario":"manual 'ban' from 'tester'","scope":"Range","type":"ban","value":"10.5.1.16/28"},)"
    R"({"duration":"59m59.040717763s","id":3,"origin":"cscli","scenario":"manual 'ban' from 'tester'","scope":"Ip","type":"ban","value":"fd00:5:1::a"}]})";
constexpr const char* kDelta =
    R"({"deleted":[{"duration":"-11.681365ms","id":1,"origin":"cscli","scenario":"manual 'ban' from 'tester'","scope":"Ip","type":"ban","value":"10.5.1.10"}],"new":null})";

TEST(Stream, ReadsNewAndDeleted) {
  std::string error;
  auto body = parse_stream(kStartup, error);
  ASSERT_TRUE(body) << error;
  ASSERT_EQ(body->added.size(), 3u);
  EXPECT_TRUE(body->deleted.empty());
  EXPECT_EQ(body->added[1].id, 2);
  EXPECT_EQ(body->added[1].scope, "Range");
  EXPECT_EQ(body->added[1].value, "10.5.1.16/28");
  EXPECT_EQ(body->added[1].origin, "cscli");
  EXPECT_EQ(body->added[1].duration, 59min + 59040ms);
  body = parse_stream(kDelta, error);
  ASSERT_TRUE(body) << error;
  ASSERT_EQ(body->deleted.size(), 1u);
  EXPECT_EQ(body->deleted[0].id, 1);
  EXPECT_TRUE(body->added.empty());
}

TEST(Stream, CountsEntriesItCannotReadAndRefusesOtherBodies) {
  std::string error;
  auto body = parse_stream(
      R"({"new":[{"id":7,"value":"10.0.0.1","duration":"1d"},{"value":"10.0.0.2","duration":"1s"},)"
      R"(3,{"id":8,"value":"10.0.0.3","duration":"1s","type":"ban","scope":"Ip"}]})",
      error);
  ASSERT_TRUE(body) << error;
  EXPECT_EQ(body->malformed, 3u);
  ASSERT_EQ(body->added.size(), 1u);
  EXPECT_EQ(body->added[0].id, 8);
  for (const char* bad : {"", "[]", "{\"new\":{}}", "<html>", "{\"deleted\":3}"}) {
    error.clear();
    EXPECT_FALSE(parse_stream(bad, error)) << bad;
    EXPECT_FALSE(error.empty());
  }
}

Decision decision(std::string scope, std::string value) {
  Decision d;
  d.type = "ban";
  d.scope = std::move(scope);
  d.value = std::move(value);
  d.origin = "cscli";
  d.scenario = "crowdsecurity/ssh-bf";
  return d;
}

TEST(DecisionPrefix, AddressesAndRanges) {
  EXPECT_EQ(decision_prefix(decision("Ip", "10.5.1.10"))->str(), "10.5.1.10");
  EXPECT_EQ(decision_prefix(decision("ip", "fd00:5:1::a"))->str(), "fd00:5:1::a");
  EXPECT_EQ(decision_prefix(decision("Ip", "::ffff:10.5.1.10"))->str(), "10.5.1.10");
  EXPECT_EQ(decision_prefix(decision("Range", "10.5.1.16/28"))->str(), "10.5.1.16/28");
  EXPECT_EQ(decision_prefix(decision("Range", "10.5.1.17/28"))->str(), "10.5.1.16/28");
  EXPECT_EQ(decision_prefix(decision("Range", "2001:db8::/32"))->str(), "2001:db8::/32");
  EXPECT_EQ(decision_prefix(decision("Range", "::ffff:10.0.0.0/104"))->str(), "10.0.0.0/8");
  for (auto [scope, value] : std::vector<std::pair<const char*, const char*>>{
           {"Ip", "10.5.1"}, {"Ip", "host.example"}, {"Range", "10.0.0.0"}, {"Range", "10.0.0.0/33"},
           {"Range", "10.0.0.0/x"}, {"Range", "10.0.0.0/"}, {"Country", "FR"}, {"AS", "64496"}})
    EXPECT_FALSE(decision_prefix(decision(scope, value))) << scope << ":" << value;
}

TEST(DecisionFilter, BansOfListedScopesOriginsAndScenarios) {
  DecisionFilter all;
  EXPECT_TRUE(all.accepts(decision("Ip", "10.0.0.1")));
  EXPECT_TRUE(all.accepts(decision("range", "10.0.0.0/8")));
  auto captcha = decision("Ip", "10.0.0.1");
  captcha.type = "captcha";
  EXPECT_FALSE(all.accepts(captcha));
  EXPECT_FALSE(all.accepts(decision("Country", "FR")));

  DecisionFilter ip_only{{"Ip"}, {}, {}};
  EXPECT_FALSE(ip_only.accepts(decision("Range", "10.0.0.0/8")));

  DecisionFilter capi{{"Ip", "Range"}, {"CAPI", "crowdsec"}, {}};
  EXPECT_FALSE(capi.accepts(decision("Ip", "10.0.0.1")));  // origin cscli
  auto from_capi = decision("Ip", "10.0.0.1");
  from_capi.origin = "capi";
  EXPECT_TRUE(capi.accepts(from_capi));

  DecisionFilter http{{"Ip"}, {}, {"http-", "nginx"}};
  EXPECT_FALSE(http.accepts(decision("Ip", "10.0.0.1")));  // ssh-bf
  auto probing = decision("Ip", "10.0.0.1");
  probing.scenario = "crowdsecurity/http-probing";
  EXPECT_TRUE(http.accepts(probing));
}

}  // namespace
}  // namespace snigate::crowdsec
