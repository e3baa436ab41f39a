// The registry behind `snigatectl conns` and ban kills: listings come oldest first, updates
// reach the listing, and kill_matching ends exactly the named client's connections.
#include <gtest/gtest.h>

#include <algorithm>

#include "conns/client_limits.h"
#include "conns/conn_registry.h"

namespace snigate::conns {
namespace {

ConnInfo conn(ConnRegistry& r, const char* client) {
  ConnInfo c;
  c.id = r.next_id();
  c.client = boost::asio::ip::make_address(client);
  return c;
}

// The session's access-log line is built from the record take() hands back, updates included.
TEST(ConnRegistry, TakeHandsBackTheRecordAndRemovesIt) {
  ConnRegistry r;
  auto c = conn(r, "192.0.2.1");
  r.add(c, [](KillReason) {});
  r.update(c.id, [](ConnInfo& i) { i.backend = "b"; });
  auto taken = r.take(c.id);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->backend, "b");
  EXPECT_EQ(r.size(), 0u);
  EXPECT_FALSE(r.take(c.id));
}

TEST(ConnRegistry, SnapshotIsOldestFirstAndCarriesUpdates) {
  ConnRegistry r;
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 50; ++i) {
    auto c = conn(r, "192.0.2.1");
    ids.push_back(c.id);
    r.add(c, [](KillReason) {});
  }
  r.update(ids[7], [](ConnInfo& c) {
    c.forward = {"a.example:443", "198.51.100.10", "allowed"};
  });
  r.take(ids[3]);
  auto snap = r.snapshot();
  ASSERT_EQ(snap.size(), 49u);
  for (std::size_t i = 1; i < snap.size(); ++i) EXPECT_LT(snap[i - 1].id, snap[i].id);
  auto it = std::find_if(snap.begin(), snap.end(), [&](const ConnInfo& c) { return c.id == ids[7]; });
  ASSERT_NE(it, snap.end());
  ASSERT_TRUE(it->forward);
  EXPECT_EQ(it->forward->requested, "a.example:443");
  EXPECT_EQ(it->forward->resolved, "198.51.100.10");
  EXPECT_EQ(it->forward->verdict, "allowed");
}

TEST(ConnRegistry, KillMatchingEndsOnlyThatClient) {
  ConnRegistry r;
  int banned_killed = 0, other_killed = 0;
  for (int i = 0; i < 3; ++i)
    r.add(conn(r, "192.0.2.7"), [&](KillReason why) { banned_killed += why == KillReason::Banned; });
  r.add(conn(r, "192.0.2.8"), [&](KillReason) { ++other_killed; });
  auto target = boost::asio::ip::make_address("192.0.2.7");
  EXPECT_EQ(r.kill_matching([&](const boost::asio::ip::address& a) { return a == target; }), 3u);
  EXPECT_EQ(banned_killed, 3);
  EXPECT_EQ(other_killed, 0);
}

TEST(ConnRegistry, DrainKillsSayDrain) {
  ConnRegistry r;
  int drained = 0;
  r.add(conn(r, "192.0.2.7"), [&](KillReason why) { drained += why == KillReason::Drain; });
  EXPECT_EQ(r.kill_matching([](const boost::asio::ip::address&) { return true; }, KillReason::Drain),
            1u);
  EXPECT_EQ(drained, 1);
}

// One IPv4 address, or one IPv6 /64, holds at most `prereads` connections in preread and
// `connections` in all; places come back when a preread ends or a ticket goes.
TEST(ClientLimits, CapsPrereadsAndConnectionsPerAddressAndPer64) {
  ClientLimits limits;
  const ClientLimits::Caps caps{3, 2};
  auto a = [](const char* text) { return boost::asio::ip::make_address(text); };
  std::string why;
  std::vector<ClientLimits::Ticket> held;
  held.push_back(*limits.admit(a("192.0.2.7"), caps, &why));
  held.push_back(*limits.admit(a("::ffff:192.0.2.7"), caps, &why));  // the same client
  EXPECT_FALSE(limits.admit(a("192.0.2.7"), caps, &why));
  EXPECT_EQ(why, "192.0.2.7 already has 2 connection(s) in preread (max_prereads_per_client)");
  EXPECT_TRUE(limits.admit(a("192.0.2.8"), caps, &why));  // another client is not affected
  held[0].preread_done();
  held.push_back(*limits.admit(a("192.0.2.7"), caps, &why));
  held[1].preread_done();
  held[2].preread_done();
  EXPECT_FALSE(limits.admit(a("192.0.2.7"), caps, &why));
  EXPECT_EQ(why, "192.0.2.7 already has 3 connection(s) open (max_connections_per_client)");

  held.push_back(*limits.admit(a("2001:db8:1:2::1"), caps, &why));
  held.push_back(*limits.admit(a("2001:db8:1:2:ffff::9"), caps, &why));  // same /64
  EXPECT_FALSE(limits.admit(a("2001:db8:1:2::77"), caps, &why));
  EXPECT_EQ(why, "2001:db8:1:2::/64 already has 2 connection(s) in preread (max_prereads_per_client)");
  EXPECT_TRUE(limits.admit(a("2001:db8:1:3::1"), caps, &why));

  held.clear();
  EXPECT_EQ(limits.clients(), 0u);
  EXPECT_TRUE(limits.admit(a("192.0.2.7"), {0, 0}, &why));  // 0: no cap
}

}  // namespace
}  // namespace snigate::conns
