#include "forward/address_policy.h"

#include <gtest/gtest.h>

namespace snigate::forward {
namespace {

namespace ip = boost::asio::ip;

AddressClass cls(const char* text) { return classify(ip::make_address(text)); }

TEST(AddressPolicy, ClassifiesSpecialRanges) {
  EXPECT_EQ(cls("127.0.7.1"), AddressClass::Loopback);
  EXPECT_EQ(cls("::1"), AddressClass::Loopback);
  EXPECT_EQ(cls("10.1.2.3"), AddressClass::Private);
  EXPECT_EQ(cls("172.16.0.1"), AddressClass::Private);
  EXPECT_EQ(cls("172.31.255.255"), AddressClass::Private);
  EXPECT_EQ(cls("172.32.0.1"), AddressClass::Public);
  EXPECT_EQ(cls("192.168.1.1"), AddressClass::Private);
  EXPECT_EQ(cls("100.64.0.1"), AddressClass::Private);
  EXPECT_EQ(cls("100.128.0.1"), AddressClass::Public);
  EXPECT_EQ(cls("169.254.169.254"), AddressClass::LinkLocal);
  EXPECT_EQ(cls("fe80::1"), AddressClass::LinkLocal);
  EXPECT_EQ(cls("fd00::1"), AddressClass::Private);
  EXPECT_EQ(cls("0.0.0.0"), AddressClass::Unspecified);
  EXPECT_EQ(cls("0.1.2.3"), AddressClass::Unspecified);
  EXPECT_EQ(cls("::"), AddressClass::Unspecified);
  EXPECT_EQ(cls("224.0.0.1"), AddressClass::Multicast);
  EXPECT_EQ(cls("ff02::1"), AddressClass::Multicast);
  EXPECT_EQ(cls("255.255.255.255"), AddressClass::Reserved);
  EXPECT_EQ(cls("8.8.8.8"), AddressClass::Public);
  EXPECT_EQ(cls("2606:4700::1111"), AddressClass::Public);
}

TEST(AddressPolicy, EmbeddedIpv4IsJudgedByTheIpv4Inside) {
  EXPECT_EQ(cls("::ffff:127.0.0.1"), AddressClass::Loopback);
  EXPECT_EQ(cls("::ffff:10.0.0.1"), AddressClass::Private);
  EXPECT_EQ(cls("::127.0.0.1"), AddressClass::Loopback);       // IPv4-compatible
  EXPECT_EQ(cls("64:ff9b::10.0.0.1"), AddressClass::Private);  // NAT64
  EXPECT_EQ(cls("2002:7f00:1::"), AddressClass::Loopback);     // 6to4 of 127.0.0.1
  EXPECT_EQ(cls("::ffff:8.8.8.8"), AddressClass::Public);
}

TEST(AddressPolicy, RefusesInsideUnlessAllowed) {
  auto none = AllowList::compile({"example.com"});
  AddressPolicy strict;
  auto v = check_address(ip::make_address("127.0.7.10"), none, strict);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.reason, "loopback");
  EXPECT_EQ(check_address(ip::make_address("::ffff:192.168.0.1"), none, strict).reason, "private");
  EXPECT_TRUE(check_address(ip::make_address("8.8.8.8"), none, strict).allowed);

  AddressPolicy open{true, {}};
  EXPECT_TRUE(check_address(ip::make_address("127.0.7.10"), none, open).allowed);
  EXPECT_TRUE(check_address(ip::make_address("10.0.0.1"), none, open).allowed);
  // Unspecified reaches the host itself; allow_private does not open it.
  EXPECT_FALSE(check_address(ip::make_address("0.0.0.0"), none, open).allowed);

  auto cidr = AllowList::compile({"127.0.7.0/24"});
  EXPECT_TRUE(check_address(ip::make_address("127.0.7.10"), cidr, strict).allowed);
  EXPECT_FALSE(check_address(ip::make_address("127.0.8.10"), cidr, strict).allowed);
}

TEST(AddressPolicy, OwnAddressesNeedAnExplicitAllow) {
  AddressPolicy policy{true, {ip::make_address("8.8.4.4")}};
  auto none = AllowList::compile({});
  auto v = check_address(ip::make_address("8.8.4.4"), none, policy);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.reason, "own address");
  EXPECT_TRUE(check_address(ip::make_address("8.8.4.4"), AllowList::compile({"8.8.4.4"}), policy)
                  .allowed);
}

TEST(AddressPolicy, InterfaceAddressesIncludeLoopback) {
  auto own = interface_addresses();
  EXPECT_NE(std::find(own.begin(), own.end(), ip::make_address("127.0.0.1")), own.end());
}

}  // namespace
}  // namespace snigate::forward
