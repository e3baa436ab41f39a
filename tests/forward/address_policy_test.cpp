#include "forward/address_policy.h"

#include <gtest/gtest.h>

namespace snigate::forward {
namespace {

namespace ip = boost::asio::ip;

AddressClass cls(const char* text) { return classify(ip::make_address(text)); }

// Stand-ins for the kernel's answer, so these tests do not depend on this host's addresses.
bool nothing_local(const ip::address&) { return false; }
bool local_192_0_2_77(const ip::address& a) { return a == ip::make_address("192.0.2.77"); }

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

// The other ways an IPv6 address carries an IPv4 one, each judged by it as 64:ff9b::/96 is.
TEST(AddressPolicy, EveryIpv4CarryingIpv6FormIsJudgedByTheIpv4Inside) {
  EXPECT_EQ(cls("64:ff9b:1::10.0.0.1"), AddressClass::Private);      // RFC 8215, /96 position
  EXPECT_EQ(cls("64:ff9b:1:7f00:1::808:808"), AddressClass::Loopback);  // RFC 8215, /48 position
  EXPECT_EQ(cls("64:ff9b:1::8.8.8.8"), AddressClass::Public);
  EXPECT_EQ(cls("::ffff:0:127.0.0.1"), AddressClass::Loopback);      // IPv4-translated
  EXPECT_EQ(cls("::ffff:0:169.254.169.254"), AddressClass::LinkLocal);
  // Teredo: server 65.54.227.120, client 10.0.0.1 (stored inverted: f5ff:fffe).
  EXPECT_EQ(cls("2001:0:4136:e378:8000:63bf:f5ff:fffe"), AddressClass::Private);
  EXPECT_EQ(cls("2001:0:7f00:1:8000:63bf:f7f7:f7f7"), AddressClass::Loopback);  // server 127.0.0.1
  EXPECT_EQ(cls("2001:0:4136:e378:8000:63bf:f7f7:f7f7"), AddressClass::Public);  // client 8.8.8.8
  EXPECT_EQ(cls("192.88.99.1"), AddressClass::Reserved);  // 6to4 relay anycast
  EXPECT_EQ(cls("2001:4860::8888"), AddressClass::Public);  // 2001::/16 outside Teredo's /32
}

TEST(AddressPolicy, RefusesInsideUnlessAllowed) {
  auto none = AllowList::compile({"example.com"});
  AddressPolicy strict{false, {}, nothing_local};
  auto v = check_address(ip::make_address("127.0.7.10"), none, strict);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.reason, "loopback");
  EXPECT_EQ(check_address(ip::make_address("::ffff:192.168.0.1"), none, strict).reason, "private");
  EXPECT_TRUE(check_address(ip::make_address("8.8.8.8"), none, strict).allowed);

  AddressPolicy open{true, {}, nothing_local};
  EXPECT_TRUE(check_address(ip::make_address("10.0.0.1"), none, open).allowed);
  // Unspecified reaches the host itself; allow_private does not open it.
  EXPECT_FALSE(check_address(ip::make_address("0.0.0.0"), none, open).allowed);

  auto cidr = AllowList::compile({"127.0.7.0/24"});
  EXPECT_TRUE(check_address(ip::make_address("127.0.7.10"), cidr, strict).allowed);
  EXPECT_FALSE(check_address(ip::make_address("127.0.8.10"), cidr, strict).allowed);
}

// All of 127.0.0.0/8 and ::1 is the host itself: allow_private does not open 127.0.0.2 or
// 127.0.0.53 (a local resolver) any more than 127.0.0.1; only an allow entry does.
TEST(AddressPolicy, AllOfLoopbackIsOwnAndOpensOnlyThroughAnAllowEntry) {
  auto none = AllowList::compile({"example.com"});
  AddressPolicy open{true, {}, nothing_local};
  for (const char* a : {"127.0.0.1", "127.0.0.2", "127.0.0.53", "127.255.255.254", "::1",
                        "::ffff:127.0.0.2", "64:ff9b::127.0.0.53"}) {
    auto v = check_address(ip::make_address(a), none, open);
    EXPECT_FALSE(v.allowed) << a;
    EXPECT_EQ(v.reason, "loopback") << a;
  }
  EXPECT_TRUE(check_address(ip::make_address("127.0.0.53"), AllowList::compile({"127.0.0.53/32"}),
                            open).allowed);
}

// "Own" is the kernel's answer at the moment of the check, not a list read at start.
TEST(AddressPolicy, OwnIsAskedAtEachCheck) {
  auto none = AllowList::compile({"example.com"});
  AddressPolicy policy{true, {}, local_192_0_2_77};
  auto v = check_address(ip::make_address("192.0.2.77"), none, policy);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.reason, "own address");
  EXPECT_TRUE(check_address(ip::make_address("192.0.2.78"), none, policy).allowed);
  // The real kernel: every 127/8 address is local, a documentation address is not.
  EXPECT_TRUE(net::is_local_address(ip::make_address("127.0.0.53")));
  EXPECT_TRUE(net::is_local_address(ip::make_address("::ffff:127.0.0.2")));
  EXPECT_FALSE(net::is_local_address(ip::make_address("192.0.2.1")));
  for (const auto& a : net::interface_addresses()) {
    if (a.is_v6() && a.to_v6().is_link_local()) continue;  // needs its interface to be asked
    EXPECT_TRUE(net::is_local_address(a)) << a;
  }
}

TEST(AddressPolicy, OwnAddressesNeedAnExplicitAllow) {
  AddressPolicy policy{true, {ip::make_address("8.8.4.4")}, nothing_local};
  auto none = AllowList::compile({});
  auto v = check_address(ip::make_address("8.8.4.4"), none, policy);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.reason, "own address");
  EXPECT_TRUE(check_address(ip::make_address("8.8.4.4"), AllowList::compile({"8.8.4.4"}), policy)
                  .allowed);
}

TEST(AddressPolicy, InterfaceAddressesIncludeLoopback) {
  auto own = net::interface_addresses();
  EXPECT_NE(std::find(own.begin(), own.end(), ip::make_address("127.0.0.1")), own.end());
}

}  // namespace
}  // namespace snigate::forward
