// Bans as an operator makes them: `snigatectl ban` against the real snigated, whose XDP
// program sits on the edge's veth. A ban drops the client's SYNs (the drop counter in
// `snigatectl bans --json` and GET /metrics rise) and ends its live connection while other addresses pass; a
// client learnt from a PROXY header is refused though the peer is the trusted proxy; CIDR and
// IPv6 bans; bans survive a restart with the map reconciled, not rewritten; unban and a 2 s
// expiry restore access.
#include "daemon_fixture.h"

namespace snigate::vmtest {
namespace {

TEST_F(DaemonBanTest, CtlBanDropsSynsAndEndsTheLiveConnectionOthersPass) {
  Relayed live, live6;
  request(live, kA, kPlain);
  ASSERT_GE(live.backend, 0) << log();
  request(live6, kA6, kPlain6);
  ASSERT_GE(live6.backend, 0) << log();
  for (const char* a : {kA, kB, kA6, kB6}) ASSERT_TRUE(serves(a)) << a;

  auto out = ctl({"ban", kA, "--reason", "vm-test"});
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_TRUE(ended(live.client)) << "the banned client's live connection stayed open";
  EXPECT_TRUE(ended(live.backend));
  EXPECT_FALSE(serves(kA));  // no handshake at all: the SYN never reached the stack
  EXPECT_TRUE(serves(kB));
  EXPECT_TRUE(serves(kA6));
  EXPECT_GE(drops(kA), 1) << ctl({"bans", "--json"}).output;
  EXPECT_EQ(drops(kB), -1);

  out = ctl({"ban", kA6});
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_TRUE(ended(live6.client));
  EXPECT_FALSE(serves(kA6));
  EXPECT_TRUE(serves(kB6));
  EXPECT_TRUE(serves(kB));
  EXPECT_GE(drops(kA6), 1);
  auto stats = ctl_json({"stats"});
  ASSERT_TRUE(stats.contains("bans")) << stats.dump();
  EXPECT_GE(stats["bans"].value("packets_dropped", 0), 2) << stats.dump();  // by the program
  EXPECT_EQ(stats["bans"].value("refused_at_accept", -1), 0) << stats.dump();

  // GET /metrics shows the program's drops (its per-CPU counters, read at the scrape) apart
  // from the refusals at accept, which the program left none of.
  const std::string metrics = scrape();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(metrics, m,
                                std::regex(R"(snigate_ban_drops_total\{stage="xdp_tc"\} (\d+))")))
      << metrics;
  EXPECT_GE(std::stoull(m[1]), 2u) << metrics;
  EXPECT_NE(metrics.find("snigate_ban_drops_total{stage=\"accept\"} 0\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("snigate_bans_active 2\n"), std::string::npos) << metrics;
}

TEST_F(DaemonBanTest, ProxyLearntClientIsRefusedThoughThePeerIsTheTrustedProxy) {
  Relayed live;
  request(live, kProxy, kProxied, "PROXY TCP4 10.5.9.9 10.5.1.2 5555 8081\r\n");
  ASSERT_GE(live.backend, 0) << log();

  auto out = ctl({"ban", "10.5.9.9", "--reason", "seen by a backend"});
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_TRUE(ended(live.client)) << "the PROXY-learnt client's live connection stayed open";

  Relayed refused;
  request(refused, kProxy, kProxied, "PROXY TCP4 10.5.9.9 10.5.1.2 5556 8081\r\n");
  ASSERT_GE(refused.client, 0) << "the proxy itself is not banned: its handshake completes";
  EXPECT_LT(refused.backend, 0) << "a banned PROXY-learnt client reached the backend";
  EXPECT_TRUE(ended(refused.client));
  Relayed other;
  request(other, kProxy, kProxied, "PROXY TCP4 10.5.9.10 10.5.1.2 5557 8081\r\n");
  EXPECT_GE(other.backend, 0) << log();
  EXPECT_GE(drops("10.5.9.9"), 1);  // the accept-time refusal counts on the ban
  EXPECT_TRUE(serves(kProxy));
}

TEST_F(DaemonBanTest, CidrAndV6BansSurviveARestartUnbanAndExpiryRestoreAccess) {
  ASSERT_EQ(ctl({"ban", kNet}).exit_code, 0);
  ASSERT_EQ(ctl({"ban", kA6}).exit_code, 0);
  auto bad = ctl({"ban", "10.5.1.17/28"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find(kNet), std::string::npos) << bad.output;  // the advice
  EXPECT_FALSE(serves(kN1));
  EXPECT_FALSE(serves(kN2));
  EXPECT_FALSE(serves(kA6));
  EXPECT_TRUE(serves(kA));
  EXPECT_TRUE(serves(kB6));
  const auto drops_before = drops(kNet);
  EXPECT_GE(drops_before, 2);

  ASSERT_EQ(stop(), 0);
  start();
  // Reconciled: both bans found in the pinned map as in the store, nothing rewritten.
  EXPECT_NE(log().find("2 in sync, 0 restored to the map, 0 recovered into the store, 0 expired"),
            std::string::npos)
      << log();
  EXPECT_GE(drops(kNet), drops_before);  // the same map entries, counters kept
  EXPECT_FALSE(serves(kN1));
  EXPECT_FALSE(serves(kA6));
  EXPECT_TRUE(serves(kA));

  ASSERT_EQ(ctl({"unban", kNet}).exit_code, 0);
  EXPECT_TRUE(serves(kN1));
  EXPECT_FALSE(serves(kA6));

  const auto banned_at = std::chrono::steady_clock::now();
  ASSERT_EQ(ctl({"ban", kA, "--for", "2s"}).exit_code, 0);
  EXPECT_FALSE(serves(kA));
  std::this_thread::sleep_until(banned_at + 2200ms);
  EXPECT_TRUE(serves(kA)) << "the 2 s ban was still in force after 2.2 s";
  EXPECT_TRUE(eventually([&] { return drops(kA) == -1; }, 5s)) << "the sweeper left it listed";
}

}  // namespace
}  // namespace snigate::vmtest
