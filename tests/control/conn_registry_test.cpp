// The registry behind `snigatectl conns` and ban kills: listings come oldest first, updates
// reach the listing, and kill_matching ends exactly the named client's connections.
#include <gtest/gtest.h>

#include <algorithm>

#include "conns/conn_registry.h"

namespace snigate::conns {
namespace {

ConnInfo conn(ConnRegistry& r, const char* client) {
  ConnInfo c;
  c.id = r.next_id();
  c.client = boost::asio::ip::make_address(client);
  return c;
}

TEST(ConnRegistry, SnapshotIsOldestFirstAndCarriesUpdates) {
  ConnRegistry r;
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 50; ++i) {
    auto c = conn(r, "192.0.2.1");
    ids.push_back(c.id);
    r.add(c, [] {});
  }
  r.update(ids[7], [](ConnInfo& c) {
    c.requested = "a.example:443";
    c.resolved = "198.51.100.10";
    c.verdict = "allowed";
  });
  r.remove(ids[3]);
  auto snap = r.snapshot();
  ASSERT_EQ(snap.size(), 49u);
  for (std::size_t i = 1; i < snap.size(); ++i) EXPECT_LT(snap[i - 1].id, snap[i].id);
  auto it = std::find_if(snap.begin(), snap.end(), [&](const ConnInfo& c) { return c.id == ids[7]; });
  ASSERT_NE(it, snap.end());
  EXPECT_EQ(it->requested, "a.example:443");
  EXPECT_EQ(it->resolved, "198.51.100.10");
  EXPECT_EQ(it->verdict, "allowed");
}

TEST(ConnRegistry, KillMatchingEndsOnlyThatClient) {
  ConnRegistry r;
  int banned_killed = 0, other_killed = 0;
  for (int i = 0; i < 3; ++i) r.add(conn(r, "192.0.2.7"), [&] { ++banned_killed; });
  r.add(conn(r, "192.0.2.8"), [&] { ++other_killed; });
  auto target = boost::asio::ip::make_address("192.0.2.7");
  EXPECT_EQ(r.kill_matching([&](const boost::asio::ip::address& a) { return a == target; }), 3u);
  EXPECT_EQ(banned_killed, 3);
  EXPECT_EQ(other_killed, 0);
}

}  // namespace
}  // namespace snigate::conns
