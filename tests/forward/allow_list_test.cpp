#include "forward/allow_list.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace snigate::forward {
namespace {

namespace ip = boost::asio::ip;

TEST(AllowList, EmptyAllowsNothing) {
  auto list = AllowList::compile({});
  EXPECT_TRUE(list.empty());
  EXPECT_FALSE(list.matches_name("example.com"));
  EXPECT_FALSE(list.matches_address(ip::make_address("203.0.113.1")));
}

TEST(AllowList, ExactNamesIgnoreCaseAndTrailingDot) {
  auto list = AllowList::compile({"Api.Example.com"});
  EXPECT_TRUE(list.matches_name("api.example.com"));
  EXPECT_TRUE(list.matches_name("API.EXAMPLE.COM."));
  EXPECT_FALSE(list.matches_name("example.com"));
  EXPECT_FALSE(list.matches_name("x.api.example.com"));
  EXPECT_FALSE(list.matches_name("api.example.com.evil.net"));
}

TEST(AllowList, WildcardCoversAnyDepthButNotTheApex) {
  auto list = AllowList::compile({"*.example.com"});
  EXPECT_TRUE(list.matches_name("a.example.com"));
  EXPECT_TRUE(list.matches_name("a.b.c.example.com"));
  EXPECT_FALSE(list.matches_name("example.com"));
  EXPECT_FALSE(list.matches_name("badexample.com"));
  EXPECT_FALSE(list.matches_name("example.com.evil.net"));
}

TEST(AllowList, RegexMatchesTheWholeNameCaselessly) {
  auto list = AllowList::compile({"~api[0-9]+\\.example\\.com"});
  EXPECT_TRUE(list.matches_name("api1.example.com"));
  EXPECT_TRUE(list.matches_name("API42.example.com"));
  EXPECT_FALSE(list.matches_name("xapi1.example.com"));
  EXPECT_FALSE(list.matches_name("api1.example.com.evil.net"));
  EXPECT_FALSE(list.matches_name("api.example.com"));
}

TEST(AllowList, AddressesAndCidrs) {
  auto list = AllowList::compile({"203.0.113.7", "198.51.100.0/24", "2001:db8::/32"});
  EXPECT_TRUE(list.has_addresses());
  EXPECT_FALSE(list.has_names());
  EXPECT_TRUE(list.matches_address(ip::make_address("203.0.113.7")));
  EXPECT_FALSE(list.matches_address(ip::make_address("203.0.113.8")));
  EXPECT_TRUE(list.matches_address(ip::make_address("198.51.100.200")));
  EXPECT_TRUE(list.matches_address(ip::make_address("::ffff:198.51.100.1")));
  EXPECT_TRUE(list.matches_address(ip::make_address("2001:db8:1::5")));
  EXPECT_FALSE(list.matches_address(ip::make_address("2001:db9::5")));
}

TEST(AllowList, IpLiteralNeverMatchesANamePattern) {
  auto list = AllowList::compile({"~.*", "*.0.113.7"});
  EXPECT_FALSE(list.matches_name("203.0.113.7"));
  EXPECT_FALSE(list.matches_name("::1"));
  EXPECT_TRUE(list.matches_name("anything.example"));
}

TEST(AllowList, BadEntriesAreRejectedWithTheEntryNamed) {
  auto message = [](std::vector<std::string> entries) {
    try {
      AllowList::compile(entries);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message({"~api(("}).find("bad regex"), std::string::npos);
  EXPECT_NE(message({"10.0.0.1/8"}).find("did you mean 10.0.0.0/8"), std::string::npos);
  EXPECT_NE(message({"a*.example.com"}).find("'a*.example.com'"), std::string::npos);
  EXPECT_NE(message({"a..example.com"}).find("empty label"), std::string::npos);
  EXPECT_NE(message({""}).find("empty"), std::string::npos);
  EXPECT_NE(message({"*."}).find("not allowed in a host name"), std::string::npos);
}

}  // namespace
}  // namespace snigate::forward
