// Forwarder::open against real loopback sockets in 127.0.7.0/24: the allow-list is applied
// before any DNS query, the address policy after it, and every failure comes back as a verdict
// with its HTTP status, never a hang.
#include "forward/forwarder.h"

#include <gtest/gtest.h>

#include <future>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/use_future.hpp>

namespace snigate::forward {
namespace {

namespace asio = boost::asio;
namespace ip = asio::ip;
using tcp = ip::tcp;

struct ForwarderTest : ::testing::Test {
  asio::io_context io;

  ForwardResult open(Forwarder& f, std::string name, std::uint16_t port, const Rules& rules) {
    auto fut = asio::co_spawn(io, f.open(std::move(name), port, rules), asio::use_future);
    io.run_for(std::chrono::seconds(10));
    io.restart();
    EXPECT_EQ(fut.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    return fut.get();
  }
  static Rules rules(std::vector<std::string> allow) { return Rules{AllowList::compile(allow)}; }
};

TEST_F(ForwarderTest, NameOffTheListIsRefusedBeforeAnyDnsQuery) {
  Forwarder f(io.get_executor(), ResolverConfig{{"127.0.7.53:53"}}, {});
  auto r = open(f, "elsewhere.test", 443, rules({"allowed.test", "127.0.7.0/24"}));
  EXPECT_EQ(r.verdict, Verdict::DeniedName);
  EXPECT_EQ(http_status(r.verdict), 403);
  EXPECT_EQ(f.resolver().queries(), 0u);
  EXPECT_EQ(r.log_fields(), "requested=elsewhere.test:443 resolved=- verdict=denied-name");
}

TEST_F(ForwarderTest, EmptyListRefusesEverything) {
  Forwarder f(io.get_executor(), {}, {});
  auto r = open(f, "127.0.7.1", 443, rules({}));
  EXPECT_EQ(r.verdict, Verdict::DeniedName);
  EXPECT_EQ(r.detail, "the allow-list is empty");
}

TEST_F(ForwarderTest, ListedAddressLiteralConnects) {
  tcp::acceptor acceptor(io, tcp::endpoint(ip::make_address("127.0.7.1"), 0));
  auto port = acceptor.local_endpoint().port();
  Forwarder f(io.get_executor(), {}, {});
  auto r = open(f, "127.0.7.1", port, rules({"127.0.7.1/32"}));
  ASSERT_EQ(r.verdict, Verdict::Allowed) << r.detail;
  ASSERT_TRUE(r.upstream && r.upstream->is_open());
  EXPECT_EQ(r.connected, tcp::endpoint(ip::make_address("127.0.7.1"), port));
  tcp::socket accepted(io);
  acceptor.accept(accepted);
  EXPECT_EQ(accepted.remote_endpoint(), r.upstream->local_endpoint());
}

TEST_F(ForwarderTest, UnlistedLiteralIsRefusedEvenWhenPublic) {
  Forwarder f(io.get_executor(), {}, {});
  auto r = open(f, "192.0.2.1", 443, rules({"example.com"}));
  EXPECT_EQ(r.verdict, Verdict::DeniedName);
  EXPECT_EQ(r.detail, "address not on the allow-list");
}

// "localhost" comes from /etc/hosts (no servers configured), so no DNS server is needed to
// see a listed name refused for where it resolves.
TEST_F(ForwarderTest, ListedNameResolvingToLoopbackIsRefusedByTheAddressPolicy) {
  Forwarder f(io.get_executor(), {}, {});
  auto r = open(f, "localhost", 443, rules({"localhost"}));
  EXPECT_EQ(r.verdict, Verdict::DeniedAddress);
  EXPECT_EQ(http_status(r.verdict), 403);
  ASSERT_FALSE(r.resolved.empty());
  EXPECT_NE(r.detail.find("loopback"), std::string::npos) << r.detail;
  EXPECT_FALSE(r.upstream);
}

TEST_F(ForwarderTest, OwnAddressNeedsAnExplicitEntryEvenWithAllowPrivate) {
  tcp::acceptor acceptor(io, tcp::endpoint(ip::make_address("127.0.7.1"), 0));
  auto port = acceptor.local_endpoint().port();
  Forwarder f(io.get_executor(), {}, {ip::make_address("127.0.7.1")});
  auto open_rules = rules({"localhost", "127.0.7.1/32"});
  auto listed = open(f, "127.0.7.1", port, open_rules);
  EXPECT_EQ(listed.verdict, Verdict::Allowed) << listed.detail;
  Forwarder g(io.get_executor(), {}, {ip::make_address("127.0.0.1"), ip::make_address("::1")});
  auto by_name = rules({"localhost"});
  by_name.allow_private = true;
  auto r = open(g, "localhost", port, by_name);
  EXPECT_EQ(r.verdict, Verdict::DeniedAddress);
  EXPECT_NE(r.detail.find("loopback"), std::string::npos) << r.detail;  // the host itself
}

TEST_F(ForwarderTest, RefusedConnectIs502) {
  std::uint16_t port;
  {
    tcp::acceptor probe(io, tcp::endpoint(ip::make_address("127.0.7.1"), 0));
    port = probe.local_endpoint().port();
  }
  Forwarder f(io.get_executor(), {}, {});
  auto r = open(f, "127.0.7.1", port, rules({"127.0.7.1"}));
  EXPECT_EQ(r.verdict, Verdict::ConnectFailed);
  EXPECT_EQ(http_status(r.verdict), 502);
  EXPECT_NE(r.detail.find("127.0.7.1"), std::string::npos);
}

// A DNS "server" that reads and drops: the lookup ends at the resolver timeout as a 504.
TEST_F(ForwarderTest, SilentDnsServerEndsInDnsTimeout) {
  ip::udp::socket silent(io, ip::udp::endpoint(ip::make_address("127.0.7.53"), 0));
  ResolverConfig resolver;
  resolver.servers = {"127.0.7.53:" + std::to_string(silent.local_endpoint().port())};
  resolver.timeout = std::chrono::milliseconds(300);
  Forwarder f(io.get_executor(), resolver, {});
  auto started = std::chrono::steady_clock::now();
  auto r = open(f, "allowed.test", 443, rules({"allowed.test"}));
  EXPECT_EQ(r.verdict, Verdict::DnsTimeout);
  EXPECT_EQ(http_status(r.verdict), 504);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
  EXPECT_EQ(f.resolver().queries(), 1u);
}

TEST_F(ForwarderTest, MissingNameOrPortIsABadRequest) {
  Forwarder f(io.get_executor(), {}, {});
  EXPECT_EQ(open(f, "", 443, rules({"a.test"})).verdict, Verdict::BadRequest);
  EXPECT_EQ(open(f, "a.test", 0, rules({"a.test"})).verdict, Verdict::BadRequest);
}

}  // namespace
}  // namespace snigate::forward
