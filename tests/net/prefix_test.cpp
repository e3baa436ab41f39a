#include "net/prefix.h"

#include <gtest/gtest.h>

using snigate::net::Prefix;
namespace ip = boost::asio::ip;

TEST(Prefix, ParsesHostsAndNetworks) {
  EXPECT_EQ(Prefix::parse("192.0.2.7")->str(), "192.0.2.7");
  EXPECT_EQ(Prefix::parse("192.0.2.0/24")->str(), "192.0.2.0/24");
  EXPECT_EQ(Prefix::parse("2001:db8::/32")->str(), "2001:db8::/32");
  EXPECT_EQ(Prefix::parse("[2001:db8::1]")->str(), "2001:db8::1");
  EXPECT_TRUE(Prefix::parse("::ffff:192.0.2.1")->is_v4());
  EXPECT_EQ(Prefix::parse("::ffff:192.0.2.0/120")->str(), "192.0.2.0/24");
}

TEST(Prefix, RejectsHostBitsAndJunkWithAdvice) {
  std::string error;
  EXPECT_FALSE(Prefix::parse("192.0.2.1/24", &error));
  EXPECT_NE(error.find("did you mean 192.0.2.0/24"), std::string::npos) << error;
  EXPECT_FALSE(Prefix::parse("192.0.2.0/33", &error));
  EXPECT_FALSE(Prefix::parse("300.1.1.1", &error));
  EXPECT_FALSE(Prefix::parse("example.org", &error));
  EXPECT_FALSE(Prefix::parse("10.0.0.0/", &error));
}

TEST(Prefix, ContainsAcrossMappedAddresses) {
  auto net = *Prefix::parse("198.51.100.0/24");
  EXPECT_TRUE(net.contains(ip::make_address("198.51.100.200")));
  EXPECT_TRUE(net.contains(ip::make_address("::ffff:198.51.100.9")));
  EXPECT_FALSE(net.contains(ip::make_address("198.51.101.1")));
  EXPECT_FALSE(net.contains(ip::make_address("2001:db8::1")));
  auto v6 = Prefix::covering(ip::make_address("2001:db8:1:2:3:4:5:6"), 64);
  EXPECT_EQ(v6.str(), "2001:db8:1:2::/64");
  EXPECT_TRUE(v6.contains(ip::make_address("2001:db8:1:2::ffff")));
  EXPECT_TRUE(Prefix::parse("0.0.0.0/0")->contains(ip::make_address("203.0.113.5")));
}
