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

TEST(ParseServer, SourceAddressNamesTheEntry) {
  std::string error;
  auto s = parse_server("127.0.0.1:8443 source=127.0.0.2", &error);
  ASSERT_TRUE(s) << error;
  ASSERT_TRUE(s->source);
  EXPECT_EQ(s->source->to_string(), "127.0.0.2");
  // Two sources towards one server are two entries in logs and metrics.
  EXPECT_EQ(address(*s), "127.0.0.1:8443 source=127.0.0.2");
  EXPECT_EQ(address(*parse_server("127.0.0.1:8443", nullptr)), "127.0.0.1:8443");
  s = parse_server("[2001:db8::1]:443 source=[2001:db8::2]", &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->source->to_string(), "2001:db8::2");
  // A name may resolve to either family: checked at connect.
  EXPECT_TRUE(parse_server("backend.example:443 source=::1", &error)) << error;
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
  EXPECT_FALSE(parse_server("a:443 source=eth0", &error));
  EXPECT_NE(error.find("source must be an IP address, not 'eth0'"), std::string::npos);
  EXPECT_FALSE(parse_server("192.0.2.10:443 source=::1", &error));
  EXPECT_NE(error.find("not of the same address family"), std::string::npos);
}

}  // namespace
}  // namespace snigate::config
