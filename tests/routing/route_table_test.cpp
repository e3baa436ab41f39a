// Which backend a name reaches: the precedence users rely on (exact, longest wildcard, regex in
// file order, default; no SNI), tables built from config text as users write them.
#include <gtest/gtest.h>

#include <thread>

#include "config/config.h"
#include "config/route_regex.h"
#include "routing/route_table.h"

namespace snigate::routing {
namespace {

constexpr const char* kConfig = R"(
[[listener]]
listen = "127.0.2.1:0"
table = "t"

[table.t]
"~^www\\.(deep\\.)?example\\.com$" = "regex_first"
"www.example.com" = "exact"
"*.example.com" = "wild"
"*.deep.example.com" = "wild_deep"
"~example\\.com$" = "regex_second"
"~^API[0-9]+\\.example\\.net$" = "api"
"~^api1\\.example\\.net$" = "api_later"
"*.example.net" = "wild_net"
default = "fallback"

[table.nosni]
no_sni = "nosni"
default = "fallback"

[table.bare]
"only.example.org" = "exact"

[backend.regex_first]
servers = ["127.0.2.1:1"]
[backend.exact]
servers = ["127.0.2.1:1"]
[backend.wild]
servers = ["127.0.2.1:1"]
[backend.wild_deep]
servers = ["127.0.2.1:1"]
[backend.regex_second]
servers = ["127.0.2.1:1"]
[backend.api]
servers = ["127.0.2.1:1"]
[backend.api_later]
servers = ["127.0.2.1:1"]
[backend.wild_net]
servers = ["127.0.2.1:1"]
[backend.fallback]
servers = ["127.0.2.1:1"]
[backend.nosni]
servers = ["127.0.2.1:1"]
)";

class RouteTableTest : public ::testing::Test {
 protected:
  config::Config config = config::load_string(kConfig, "routes.toml");
  RouteTable t = RouteTable::build(config.tables.at("t"));

  std::string route(std::string_view name, const RouteTable* table = nullptr) {
    const std::string* backend = (table ? table : &t)->lookup(name);
    return backend ? *backend : "(none)";
  }
};

TEST_F(RouteTableTest, ExactBeatsWildcardAndAnEarlierRegex) {
  EXPECT_EQ(route("www.example.com"), "exact");
}

TEST_F(RouteTableTest, LongestWildcardWinsAtAnyDepth) {
  EXPECT_EQ(route("a.example.com"), "wild");
  EXPECT_EQ(route("a.b.c.example.com"), "wild");
  EXPECT_EQ(route("x.deep.example.com"), "wild_deep");
  EXPECT_EQ(route("x.y.deep.example.com"), "wild_deep");
  // The wildcard beats a regex that also matches, even one earlier in the file.
  EXPECT_EQ(route("www.deep.example.com"), "wild_deep");
}

TEST_F(RouteTableTest, WildcardDoesNotCoverItsApex) {
  // "deep.example.com" is below *.example.com, not *.deep.example.com.
  EXPECT_EQ(route("deep.example.com"), "wild");
  // "example.com" is the apex of *.example.com: no wildcard, so the regexes decide.
  EXPECT_EQ(route("example.com"), "regex_second");
  EXPECT_EQ(route("example.net"), "fallback");
}

TEST_F(RouteTableTest, WildcardBeatsRegexesThatComeEarlier) {
  EXPECT_EQ(route("api1.example.net"), "wild_net");
  // A name only a regex matches.
  EXPECT_EQ(route("notexample.com"), "regex_second");
}

TEST_F(RouteTableTest, NamesIgnoreCaseAndOneTrailingDot) {
  EXPECT_EQ(route("WWW.Example.COM"), "exact");
  EXPECT_EQ(route("www.example.com."), "exact");
  EXPECT_EQ(route("A.DEEP.example.com."), "wild_deep");
  EXPECT_EQ(route("NOTEXAMPLE.COM."), "regex_second");
}

TEST_F(RouteTableTest, UnknownNameGoesToDefault) {
  EXPECT_EQ(route("other.org"), "fallback");
}

TEST_F(RouteTableTest, NoNameUsesNoSniElseDefault) {
  RouteTable nosni = RouteTable::build(config.tables.at("nosni"));
  EXPECT_EQ(route("", &nosni), "nosni");
  EXPECT_EQ(route("x.org", &nosni), "fallback");
  EXPECT_EQ(route(""), "fallback");
}

TEST_F(RouteTableTest, NothingMatchesWithoutDefault) {
  RouteTable bare = RouteTable::build(config.tables.at("bare"));
  EXPECT_EQ(route("only.example.org", &bare), "exact");
  EXPECT_EQ(route("other.example.org", &bare), "(none)");
  EXPECT_EQ(route("", &bare), "(none)");
}

TEST(RouteTableRegex, FileOrderDecidesBetweenMatchingRegexes) {
  config::TableConfig table;
  table.entries.push_back({config::RouteEntry::Kind::Regex, "^API[0-9]+\\.example\\.net$", "first", {}});
  table.entries.push_back({config::RouteEntry::Kind::Regex, "^api1\\.example\\.net$", "second", {}});
  table.entries.push_back({config::RouteEntry::Kind::Regex, "^api1\\.", "third", {}});
  RouteTable t = RouteTable::build(table);
  // Case-insensitive even though the pattern is upper case.
  EXPECT_EQ(*t.lookup("api1.example.net"), "first");
  EXPECT_EQ(*t.lookup("api1.example.org"), "third");
  EXPECT_EQ(t.lookup("api.example.net"), nullptr);
}

TEST(RouteTableRegex, BadPatternFailsAtItsEntry) {
  config::Config c = config::load_string(
      "[[listener]]\nlisten = \"127.0.2.1:0\"\ntable = \"t\"\n[table.t]\n\"~^ok$\" = \"b\"\n"
      "[backend.b]\nservers = \"127.0.2.1:1\"\n",
      "regex.toml");
  config::TableConfig table = c.tables.at("t");
  table.entries[0].pattern = "[a-";
  try {
    RouteTable::build(table);
    FAIL() << "built a table from a broken regex";
  } catch (const config::ConfigError& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with("regex.toml:5:1: regex \"[a-\": ")) << e.what();
  }
}

// (a+)+$ against "aaaa...a!" backtracks exponentially. With PCRE2's default limit (10 million
// steps) the name below fails only after millions of steps; with the route limit it gives up
// at once, is counted, and the lookup goes on to the default.
TEST(RouteTableRegex, CatastrophicPatternGivesUpAtTheLimitAndIsCounted) {
  config::TableConfig table;
  table.entries.push_back({config::RouteEntry::Kind::Regex, "^(a+)+$", "evil", {}});
  table.entries.push_back({config::RouteEntry::Kind::Regex, "^b[a-z]+\\.example$", "fine", {}});
  table.default_backend = "fallback";
  RouteTable t = RouteTable::build(table);
  EXPECT_EQ(*t.lookup("aaaaaaaaaa"), "evil");
  EXPECT_EQ(t.regex_limit_hits(), 0u);
  const std::string crafted = std::string(28, 'a') + "!";
  EXPECT_EQ(*t.lookup(crafted), "fallback");
  EXPECT_EQ(*t.lookup(crafted), "fallback");
  EXPECT_EQ(t.regex_limit_hits(), 2u);
  // A long but ordinary name is well inside the limit.
  EXPECT_EQ(*t.lookup("b" + std::string(240, 'x') + ".example"), "fine");
  EXPECT_EQ(t.regex_limit_hits(), 2u);

  // Direct: the same match with the shared context reports the limit, not "no match".
  auto code = config::compile_route_regex("^(a+)+$", nullptr);
  auto* data = pcre2_match_data_create(1, nullptr);
  int rc = pcre2_match(code.get(), reinterpret_cast<PCRE2_SPTR>(crafted.data()), crafted.size(),
                       0, 0, data, config::route_match_context());
  pcre2_match_data_free(data);
  EXPECT_TRUE(rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT) << rc;
}

TEST(RouteRegexShape, NestedUnboundedQuantifiersAreFlagged) {
  for (const char* bad : {"(a+)+$", "^(x*y)*z", "((ab)+c)+", "(?:[a-z]+\\.)+example$", "(a{2,})*",
                          "(a+?)+"})
    EXPECT_TRUE(config::nests_unbounded_quantifiers(bad)) << bad;
  for (const char* ok : {"^api[0-9]+\\.example\\.net$", "(ab)+", "(a+){3}", "(a|b)*c",
                         "[(a+)]+", "\\(a+\\)+", "^(www\\.)?example\\.org$"})
    EXPECT_FALSE(config::nests_unbounded_quantifiers(ok)) << ok;
}

TEST(RouteTableThreads, ConcurrentLookupsAgree) {
  config::Config c = config::load_string(kConfig, "routes.toml");
  const RouteTable t = RouteTable::build(c.tables.at("t"));
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      for (int n = 0; n < 5000; ++n) {
        if (*t.lookup("notexample.com") != "regex_second") ++wrong;
        if (*t.lookup("x.deep.example.com") != "wild_deep") ++wrong;
        if (*t.lookup("zzz") != "fallback") ++wrong;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace snigate::routing
