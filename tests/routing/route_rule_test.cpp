// Rules that route on more than the name ([[table.X.rule]]): ALPN, the client's address, and
// the precedence the README states (rules in file order, then the name entries), from config
// text as users write it; and the rules `snigated --check` calls unreachable.
#include <gtest/gtest.h>

#include "config/config.h"
#include "routing/route_table.h"
#include "routing/rule_check.h"

namespace snigate::routing {
namespace {

namespace ip = boost::asio::ip;

constexpr const char* kConfig = R"(
[[listener]]
name = "tls"
listen = "127.0.2.1:0"
table = "edge"

[table.edge]
"*.mydomain.org" = "public"
"chat.mydomain.org" = "web"
default = "fallback"

[[table.edge.rule]]
alpn = ["acme-tls/1"]
backend = "acme"

[[table.edge.rule]]
name = "chat.mydomain.org"
alpn = ["xmpp-client", "xmpp-server"]
backend = "xmpp"

[[table.edge.rule]]
name = "*.mydomain.org"
client = ["10.0.0.0/8", "fd00::/8"]
backend = "internal"

[[table.edge.rule]]
name = "~^api[0-9]+\\.mydomain\\.org$"
client = ["192.0.2.0/24"]
backend = "partner"

[[table.edge.rule]]
client = ["198.51.100.7"]
backend = "quarantine"

[backend.public]
servers = ["127.0.2.1:1"]
[backend.web]
servers = ["127.0.2.1:1"]
[backend.fallback]
servers = ["127.0.2.1:1"]
[backend.acme]
servers = ["127.0.2.1:1"]
[backend.xmpp]
servers = ["127.0.2.1:1"]
[backend.internal]
servers = ["127.0.2.1:1"]
[backend.partner]
servers = ["127.0.2.1:1"]
[backend.quarantine]
servers = ["127.0.2.1:1"]
)";

class RouteRuleTest : public ::testing::Test {
 protected:
  config::Config config = config::load_string(kConfig, "rules.toml");
  RouteTable t = RouteTable::build(config.tables.at("edge"));

  // "backend by rule"
  std::string route(std::string_view name, std::vector<std::string> alpn = {},
                    std::string client = "203.0.113.9") {
    RouteMatch m = t.route({name, &alpn, ip::make_address(client)});
    if (!m.backend) return "(none)";
    return *m.backend + " by " + *m.rule;
  }
};

TEST_F(RouteRuleTest, AcmeTlsAlpnReachesTheAcmeHostForAnyName) {
  EXPECT_EQ(route("chat.mydomain.org", {"acme-tls/1"}), "acme by rule#1");
  EXPECT_EQ(route("www.mydomain.org", {"acme-tls/1"}), "acme by rule#1");
  EXPECT_EQ(route("unknown.example", {"acme-tls/1"}), "acme by rule#1");
  // The same names without it go where their name entries say.
  EXPECT_EQ(route("chat.mydomain.org", {"h2", "http/1.1"}), "web by exact");
  EXPECT_EQ(route("www.mydomain.org", {"h2"}), "public by *.mydomain.org");
  EXPECT_EQ(route("unknown.example", {"h2"}), "fallback by default");
}

TEST_F(RouteRuleTest, AnyOfferedProtocolMatches) {
  EXPECT_EQ(route("chat.mydomain.org", {"h2", "xmpp-client"}), "xmpp by rule#2");
  EXPECT_EQ(route("chat.mydomain.org", {"xmpp-server"}), "xmpp by rule#2");
  // The name condition still holds: xmpp on another name is not this rule.
  EXPECT_EQ(route("www.mydomain.org", {"xmpp-client"}), "public by *.mydomain.org");
}

TEST_F(RouteRuleTest, ClientRangesSendTheOfficeInsideV4AndV6) {
  EXPECT_EQ(route("www.mydomain.org", {"h2"}, "10.1.2.3"), "internal by rule#3");
  EXPECT_EQ(route("a.b.mydomain.org", {}, "fd00::42"), "internal by rule#3");
  // IPv4 seen on a dual-stack listener as ::ffff:a.b.c.d is still IPv4.
  EXPECT_EQ(route("www.mydomain.org", {}, "::ffff:10.9.9.9"), "internal by rule#3");
  EXPECT_EQ(route("www.mydomain.org", {}, "11.0.0.1"), "public by *.mydomain.org");
  // The wildcard does not cover its apex, in a rule as in a name entry.
  EXPECT_EQ(route("mydomain.org", {}, "10.1.2.3"), "fallback by default");
}

TEST_F(RouteRuleTest, FileOrderDecidesBetweenRulesThatBothMatch) {
  // rule#1 (ALPN) and rule#3 (client) both hold: the first in the file wins.
  EXPECT_EQ(route("www.mydomain.org", {"acme-tls/1"}, "10.1.2.3"), "acme by rule#1");
  // rule#2 and rule#3 both hold for chat from the office offering xmpp.
  EXPECT_EQ(route("chat.mydomain.org", {"xmpp-client"}, "10.1.2.3"), "xmpp by rule#2");
}

TEST_F(RouteRuleTest, RegexNameAndClientTogether) {
  EXPECT_EQ(route("api7.mydomain.org", {}, "192.0.2.55"), "partner by rule#4");
  // From elsewhere the same name falls to the wildcard entry.
  EXPECT_EQ(route("api7.mydomain.org", {}, "203.0.113.1"), "public by *.mydomain.org");
  // But rule#3 comes before rule#4 for the office.
  EXPECT_EQ(route("api7.mydomain.org", {}, "10.0.0.1"), "internal by rule#3");
}

TEST_F(RouteRuleTest, ARuleWithoutNameAlsoTakesConnectionsWithoutOne) {
  EXPECT_EQ(route("", {}, "198.51.100.7"), "quarantine by rule#5");
  EXPECT_EQ(route("anything.example", {}, "198.51.100.7"), "quarantine by rule#5");
  EXPECT_EQ(route("", {}, "198.51.100.8"), "fallback by default");
  // A rule with a name never takes a connection without one.
  EXPECT_EQ(route("", {"xmpp-client"}, "10.1.2.3"), "fallback by default");
}

TEST_F(RouteRuleTest, UnknownClientAndNoAlpnMatchNoRuleThatNeedsThem) {
  std::vector<std::string> none;
  RouteMatch m = t.route({"www.mydomain.org", &none, std::nullopt});
  ASSERT_NE(m.backend, nullptr);
  EXPECT_EQ(*m.backend, "public");
  EXPECT_EQ(m.matched_rule, nullptr);
  EXPECT_EQ(*t.lookup("chat.mydomain.org"), "web");
}

TEST(RouteRuleIndex, AThousandExactRulesStillFindTheFirstInFileOrder) {
  std::string text = "[[listener]]\nlisten = \"127.0.2.1:0\"\ntable = \"t\"\n[table.t]\n"
                     "default = \"b0\"\n";
  for (int i = 0; i < 1000; ++i)
    text += "[[table.t.rule]]\nname = \"h" + std::to_string(i % 500) +
            ".example\"\nclient = [\"10." + std::to_string(i / 500) + ".0.0/16\"]\nbackend = \"b" +
            std::to_string(i % 3) + "\"\n";
  text += "[[table.t.rule]]\nname = \"*.example\"\nclient = [\"10.0.0.0/8\"]\nbackend = \"b2\"\n";
  for (int b = 0; b < 3; ++b)
    text += "[backend.b" + std::to_string(b) + "]\nservers = [\"127.0.2.1:1\"]\n";
  config::Config c = config::load_string(text, "many.toml");
  RouteTable t = RouteTable::build(c.tables.at("t"));
  std::vector<std::string> alpn;
  auto rule = [&](const char* name, const char* client) {
    RouteMatch m = t.route({name, &alpn, ip::make_address(client)});
    return m.rule ? *m.rule : std::string("(none)");
  };
  EXPECT_EQ(rule("h7.example", "10.0.1.1"), "rule#8");
  EXPECT_EQ(rule("h7.example", "10.1.1.1"), "rule#508");
  // The wildcard rule is last in the file: it takes only what no exact rule did.
  EXPECT_EQ(rule("h7.example", "10.2.1.1"), "rule#1001");
  EXPECT_EQ(rule("other.example", "10.0.0.1"), "rule#1001");
  EXPECT_EQ(rule("h7.example", "11.0.0.1"), "default");
}

config::Config load(const std::string& rules, const char* protocol = "tls") {
  return config::load_string(std::string("[[listener]]\nlisten = \"127.0.2.1:0\"\nprotocol = \"") +
                                 protocol + "\"\ntable = \"t\"\n[table.t]\ndefault = \"b\"\n" +
                                 rules + "[backend.b]\nservers = [\"127.0.2.1:1\"]\n",
                             "check.toml");
}

TEST(RouteRuleCheck, ARuleAnEarlierOneAlwaysTakesIsNamedWithItsLine) {
  auto warnings = unreachable_rules(load(
      "[[table.t.rule]]\nname = \"*.example.org\"\nbackend = \"b\"\n"
      "[[table.t.rule]]\nname = \"www.example.org\"\nalpn = [\"h2\"]\nbackend = \"b\"\n"
      "[[table.t.rule]]\nname = \"example.org\"\nbackend = \"b\"\n"
      "[[table.t.rule]]\nclient = [\"10.0.0.0/8\"]\nbackend = \"b\"\n"
      "[[table.t.rule]]\nclient = [\"10.1.0.0/16\", \"10.2.0.0/16\"]\nalpn = [\"h2\"]\n"
      "backend = \"b\"\n"
      "[[table.t.rule]]\nclient = [\"10.1.0.0/16\", \"11.0.0.0/8\"]\nbackend = \"b\"\n"));
  ASSERT_EQ(warnings.size(), 2u) << ::testing::PrintToString(warnings);
  EXPECT_NE(warnings[0].find("check.toml:10:1:"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("rule#2 (name www.example.org, alpn h2) never matches: rule#1 "
                             "(name *.example.org)"),
            std::string::npos)
      << warnings[0];
  EXPECT_NE(warnings[1].find("rule#5"), std::string::npos) << warnings[1];
  EXPECT_NE(warnings[1].find("rule#4 (client 10.0.0.0/8)"), std::string::npos) << warnings[1];
}

TEST(RouteRuleCheck, AlpnRuleInATableOnlyHttpListenersUse) {
  auto warnings = unreachable_rules(
      load("[[table.t.rule]]\nalpn = [\"acme-tls/1\"]\nbackend = \"b\"\n", "http"));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("only http listeners use this table"), std::string::npos);
  EXPECT_TRUE(unreachable_rules(
                  load("[[table.t.rule]]\nalpn = [\"acme-tls/1\"]\nbackend = \"b\"\n", "tls"))
                  .empty());
}

void expect_error(const std::string& rules, const std::string& where, const std::string& what) {
  try {
    load(rules);
    ADD_FAILURE() << "accepted: " << rules;
  } catch (const config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

TEST(RouteRuleConfig, MistakesAreNamedAtTheirLine) {
  expect_error("[[table.t.rule]]\nbackend = \"b\"\n", "check.toml:7:",
               "has no condition (name, alpn or client)");
  expect_error("[[table.t.rule]]\nalpn = []\nbackend = \"b\"\n", "check.toml:8:",
               "alpn = [] never matches");
  expect_error("[[table.t.rule]]\nclient = [\"10.0.0.1/8\"]\nbackend = \"b\"\n", "check.toml:8:",
               "[[table.t.rule]] client '10.0.0.1/8'");
  expect_error("[[table.t.rule]]\nname = \"*.x.*\"\nbackend = \"b\"\n", "check.toml:8:",
               "wildcard \"*.x.*\"");
  expect_error("[[table.t.rule]]\nname = \"a.org\"\nbakend = \"b\"\nbackend = \"b\"\n",
               "check.toml:9:", "unknown key 'bakend' in [[table.t.rule]]");
  expect_error("[[table.t.rule]]\nalpn = [\"h2\"]\n", "check.toml", "backend");
  expect_error("[[table.t.rule]]\nalpn = [\"h2\"]\nbackend = \"nope\"\n", "check.toml:7:",
               "names backend 'nope', which is not defined");
}

TEST(RouteRuleConfig, ClientsOnATlsListenerPointsToRules) {
  try {
    config::load_string("[[listener]]\nlisten = \"127.0.2.1:0\"\ntable = \"t\"\n"
                        "clients = [\"10.0.0.0/8\"]\n[table.t]\ndefault = \"b\"\n"
                        "[backend.b]\nservers = [\"127.0.2.1:1\"]\n",
                        "clients.toml");
    ADD_FAILURE() << "accepted";
  } catch (const config::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("clients.toml:4:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[[table.X.rule]] client = [...]"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace snigate::routing
