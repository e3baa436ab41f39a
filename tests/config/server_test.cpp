// Server entries as nginx users write them.
#include <gtest/gtest.h>

#include "config/server.h"

namespace snigate::config {
namespace {

using namespace std::chrono_literals;

TEST(ParseServer, AllOptions) {
  std::string error;
  auto s = parse_server("host.example:8443  weight=5 max_fails=0 fail_timeout=1m backup", &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->host, "host.example");
  EXPECT_EQ(s->port, 8443);
  EXPECT_EQ(s->weight, 5u);
  EXPECT_EQ(s->max_fails, 0u);
  EXPECT_EQ(s->fail_timeout, 1min);
  EXPECT_TRUE(s->backup);
}

TEST(ParseServer, Ipv6LiteralLosesItsBrackets) {
  auto s = parse_server("[::1]:443", nullptr);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->host, "::1");
  EXPECT_EQ(s->port, 443);
  EXPECT_EQ(s->text, "[::1]:443");
}

TEST(ParseServer, Refusals) {
  std::string error;
  EXPECT_FALSE(parse_server("", &error));
  EXPECT_NE(error.find("empty server"), std::string::npos);
  EXPECT_FALSE(parse_server("a$b:443", &error));
  EXPECT_NE(error.find("not a host name"), std::string::npos);
  EXPECT_FALSE(parse_server("a:443 weight=", &error));
  EXPECT_NE(error.find("weight must be"), std::string::npos);
  EXPECT_FALSE(parse_server("a:443 max_fails=x", &error));
  EXPECT_NE(error.find("max_fails must be"), std::string::npos);
  EXPECT_FALSE(parse_server("a:443 down", &error));
  EXPECT_NE(error.find("unknown option 'down'"), std::string::npos);
}

}  // namespace
}  // namespace snigate::config
