// snigated beside a real CrowdSec Local API (Debian 12's crowdsec, unpacked by
// tools/install-deps.sh, started by the test in the backend namespace on 10.5.2.2:8090, which
// the edge reaches over its back link). As a bouncer: `cscli decisions add` (address, range,
// IPv6) is dropped by XDP at the edge, `cscli decisions delete` lifts it, a local `snigatectl
// ban` of the same address survives CrowdSec's delete, and with LAPI stopped the bans stay,
// then a LAPI restarted with other decisions is followed (startup resync), and a full pull
// every resync_interval catches what the deltas missed. As a source: a
// second snigated (edge A, in the backend namespace) bans from its jail while LAPI is down,
// the alert goes once LAPI is back, the ban shows in `cscli decisions list`, and the first
// edge drops that client.
#include <filesystem>
#include <fstream>

#include <sys/stat.h>

#include "daemon_fixture.h"
#include "local_api.h"

namespace snigate::vmtest {
namespace {

class CrowdsecBouncerTest : public DaemonBanTest {
 protected:
  // The bouncer polls every second; a change must show within this: a bound for a loaded
  // machine or the emulated 6.1 guest (where LAPI's bcrypt logins take seconds), not a
  // timing claim. Passing tests never wait for it.
  static constexpr auto kPull = std::chrono::seconds(15);

  void SetUp() override {
    if (auto why = LocalApi::unavailable(); !why.empty())
      GTEST_SKIP() << "SKIPPED LOUDLY: CrowdSec vm-tests " << why;
    DaemonBanTest::SetUp();
  }

  void TearDown() override {
    DaemonBanTest::TearDown();
    lapi_.reset();
  }

  // LAPI up with snigate's bouncer key (and cscli's machine) before the daemon starts.
  void prepare_store() override {
    lapi_dir_ = store_dir_ + "/lapi";
    std::filesystem::create_directories(lapi_dir_);
    lapi_ = std::make_unique<LocalApi>(net_->backend(), net_->v4().backend + ":8090", lapi_dir_);
    start_lapi();
    key_file_ = store_dir_ + "/crowdsec.key";
    std::ofstream(key_file_) << key_ << "\n";
    ::chmod(key_file_.c_str(), 0600);
  }

  void start_lapi() {
    std::string error;
    ASSERT_TRUE(lapi_->start(error)) << error;
    key_ = lapi_->add_bouncer("snigate");
    lapi_->add_machine("tester", "tester-password-0123456789");
  }

  std::string more_config() const override {
    return "\n[crowdsec]\nlapi_url = \"" + lapi_->url() + "\"\napi_key_file = \"" + key_file_ +
           "\"\npoll_interval = \"1s\"\nresync_interval = \"3s\"\n";
  }

  void cscli_ok(std::vector<std::string> args) {
    auto out = lapi_->cscli(args);
    ASSERT_EQ(out.exit_code, 0) << out.output;
  }

  // The source `snigatectl bans --json` shows for `prefix`, or "" while it is not banned.
  std::string source_of(const std::string& prefix) {
    auto list = ctl_json({"bans"});
    if (list.is_array())
      for (const auto& b : list)
        if (b.value("prefix", "") == prefix) return b.value("source", "");
    return {};
  }
  bool becomes(const std::string& prefix, const std::string& source) {
    return eventually([&] { return source_of(prefix) == source; }, kPull);
  }

  std::unique_ptr<LocalApi> lapi_;
  std::string lapi_dir_, key_, key_file_;
};

TEST_F(CrowdsecBouncerTest, DecisionsAreDroppedByXdpAndDeletesLiftThem) {
  ASSERT_TRUE(serves(kA));
  cscli_ok({"decisions", "add", "--ip", kA, "--duration", "1h"});
  cscli_ok({"decisions", "add", "--range", kNet, "--duration", "1h"});
  cscli_ok({"decisions", "add", "--ip", kA6, "--duration", "1h"});
  ASSERT_TRUE(becomes(kA, "crowdsec:cscli")) << log();
  ASSERT_TRUE(becomes(kNet, "crowdsec:cscli")) << log();
  ASSERT_TRUE(becomes(kA6, "crowdsec:cscli")) << log();
  for (const char* banned : {kA, kN1, kA6}) EXPECT_FALSE(serves(banned)) << banned;
  EXPECT_TRUE(serves(kB));
  EXPECT_TRUE(serves(kB6));
  EXPECT_GE(drops(kA), 1) << "the SYNs were not dropped under CrowdSec's ban";
  EXPECT_GE(drops(kNet), 1);
  EXPECT_GE(drops(kA6), 1);
  auto stats = ctl_json({"stats"});
  EXPECT_EQ(stats["bans"].value("refused_at_accept", -1), 0) << "dropped at accept, not by XDP";

  cscli_ok({"decisions", "delete", "--ip", kA});
  cscli_ok({"decisions", "delete", "--range", kNet});
  ASSERT_TRUE(becomes(kA, "")) << log();
  ASSERT_TRUE(becomes(kNet, "")) << log();
  EXPECT_TRUE(serves(kA));
  EXPECT_TRUE(serves(kN2));
  EXPECT_FALSE(serves(kA6));  // its decision still stands
}

TEST_F(CrowdsecBouncerTest, ALocalBanSurvivesACrowdsecDelete) {
  // snigatectl first, then CrowdSec on the same address; and the other way round.
  ASSERT_EQ(ctl({"ban", kA, "--reason", "operator"}).exit_code, 0);
  cscli_ok({"decisions", "add", "--ip", kA, "--duration", "1h"});
  cscli_ok({"decisions", "add", "--ip", kB6, "--duration", "1h"});
  ASSERT_TRUE(becomes(kB6, "crowdsec:cscli")) << log();
  cscli_ok({"decisions", "add", "--ip", kB, "--duration", "1h"});
  ASSERT_TRUE(becomes(kB, "crowdsec:cscli")) << log();
  ASSERT_EQ(ctl({"ban", kB, "--reason", "operator too"}).exit_code, 0);
  EXPECT_EQ(source_of(kA), "ctl");

  // Deleted in CrowdSec; a marker decision in the same pull shows the bouncer has seen it.
  cscli_ok({"decisions", "delete", "--ip", kA});
  cscli_ok({"decisions", "delete", "--ip", kB});
  cscli_ok({"decisions", "delete", "--ip", kB6});
  ASSERT_TRUE(becomes(kB6, "")) << log();
  EXPECT_EQ(source_of(kA), "ctl");
  EXPECT_EQ(source_of(kB), "ctl");
  EXPECT_FALSE(serves(kA));
  EXPECT_FALSE(serves(kB));
}

TEST_F(CrowdsecBouncerTest, LapiDownKeepsBansAndARestartedLapiIsFollowed) {
  cscli_ok({"decisions", "add", "--ip", kA, "--duration", "1h"});
  ASSERT_TRUE(becomes(kA, "crowdsec:cscli")) << log();

  lapi_->stop();
  ASSERT_TRUE(daemon_->process().wait_for(std::regex("stay until they expire"), kPull)) << log();
  EXPECT_EQ(source_of(kA), "crowdsec:cscli");
  EXPECT_FALSE(serves(kA));

  // Back with another database (restored from elsewhere, say): kA is no decision there, kB
  // is. Only a startup pull can know kA went.
  std::filesystem::remove(lapi_dir_ + "/crowdsec.db");
  start_lapi();
  cscli_ok({"decisions", "add", "--ip", kB, "--duration", "1h"});
  // Back-off after the failures: 2, 4, 8, 16 s at a 1 s poll interval.
  ASSERT_TRUE(eventually([&] { return source_of(kB) == "crowdsec:cscli"; }, 40s)) << log();
  EXPECT_EQ(source_of(kA), "") << log();
  EXPECT_TRUE(serves(kA));
  EXPECT_FALSE(serves(kB));
  EXPECT_TRUE(std::regex_search(log(), std::regex("answers again"))) << log();
}

// A decision that leaves LAPI with no delta saying so (deleted from its database behind its
// back) is followed by the next full pull, at most resync_interval after the last: deltas
// also miss a decision created while a pull ran (crowdsec_config.h), which this stands for.
TEST_F(CrowdsecBouncerTest, AFullPullEveryResyncIntervalCatchesWhatDeltasMissed) {
  if (std::system("sqlite3 -version >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "SKIPPED LOUDLY: needs sqlite3 (tools/install-deps.sh installs it)";
  cscli_ok({"decisions", "add", "--ip", kA, "--duration", "1h"});
  ASSERT_TRUE(becomes(kA, "crowdsec:cscli")) << log();
  // LAPI writes on every pull: wait out its lock rather than fail.
  auto out = itest::run({"sqlite3", "-cmd", ".timeout 10000", lapi_dir_ + "/crowdsec.db",
                         "DELETE FROM decisions WHERE value = '" + std::string(kA) + "'"});
  ASSERT_EQ(out.exit_code, 0) << out.output;
  ASSERT_TRUE(becomes(kA, "")) << log();
  EXPECT_TRUE(serves(kA));
  EXPECT_TRUE(std::regex_search(log(), std::regex(R"(a full pull from \S+ found what its deltas )"
                                                  R"(had missed: 0 prefix\(es\) banned, 1 lifted)")))
      << log();
}

// Edge A: a second snigated, in the backend namespace, whose jail bans (while LAPI is down:
// the alert queues) and pushes to LAPI as machine "edge-a"; the test's edge (B) takes it from
// there as a bouncer. Edge A is a bouncer too: what it takes from LAPI it never pushes back,
// and its own ban coming back from LAPI stays its jail's.
TEST_F(CrowdsecBouncerTest, AJailBanOnEdgeAIsInLapiAndEnforcedByEdgeB) {
  const std::string dir = store_dir_ + "/edge-a";
  std::filesystem::create_directories(dir);
  lapi_->add_machine("edge-a", "edge-a-password-0123456789");
  const std::string password = dir + "/machine.pass", app_log = dir + "/app.log",
                    key = dir + "/bouncer.key";
  std::ofstream(password) << "edge-a-password-0123456789\n";
  std::ofstream(key) << lapi_->add_bouncer("edge-a") << "\n";
  for (const auto& secret : {password, key}) ::chmod(secret.c_str(), 0600);
  std::ofstream(app_log).flush();
  const std::string socket = dir + "/control.sock", config = dir + "/snigate.toml";
  std::ofstream(config) << R"([daemon]
workers = 1
relay = "copy"
control_socket = ")" << socket << R"("

[[listener]]
name = "a"
listen = "127.0.0.1:9080"
protocol = "http"
table = "t"

[table.t]
default = "be"

[backend.be]
servers = ["127.0.0.1:9"]

[bans]
pin_dir = ")" << pin_root_ << R"(/edge-a"
store = ")" << dir << R"(/bans.db"

[crowdsec]
lapi_url = ")" << lapi_->url() << R"("
api_key_file = ")" << key << R"("
poll_interval = "1s"
machine_id = "edge-a"
machine_password_file = ")" << password << R"("
push = ["jails", "ctl"]

[[jail]]
name = "app-login"
logpath = ")" << app_log << R"("
failregex = "^login failed from <HOST>$"
datepattern = "{NONE}"
maxretry = 1
bantime = "1h"
)";
  std::unique_ptr<itest::Snigated> edge_a;
  in_netns(net_->backend(), [&] {
    edge_a = std::make_unique<itest::Snigated>(config);
  });
  auto ctl_a = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {SNIGATECTL_PATH, "--socket", socket});
    return itest::run(args, {}, 10s);
  };
  cscli_ok({"decisions", "add", "--ip", kB6, "--duration", "1h"});
  ASSERT_TRUE(eventually([&] { return ctl_a({"bans"}).output.find(kB6) != std::string::npos; }, kPull))
      << edge_a->log();

  // The jail bans while LAPI is down: the alert waits in edge A's queue and goes once LAPI
  // is back (same database, so the machine's login still holds).
  lapi_->stop();
  std::ofstream(app_log, std::ios::app) << "login failed from " << kA << "\n";
  ASSERT_TRUE(eventually([&] { return ctl_a({"bans"}).output.find(kA) != std::string::npos; }))
      << edge_a->log();
  ASSERT_TRUE(edge_a->process().wait_for(std::regex("pushing alerts: .* 1 alert\\(s\\) queue"), kPull))
      << edge_a->log();
  std::string error;
  ASSERT_TRUE(lapi_->start(error)) << error;
  // The push backs off 2, 4, 8 s while LAPI is down.
  ASSERT_TRUE(eventually([&] {
    return lapi_->cscli({"decisions", "list", "--origin", "snigate", "-o", "json"})
               .output.find(kA) != std::string::npos;
  }, 40s)) << edge_a->log() << lapi_->log();
  EXPECT_TRUE(std::regex_search(edge_a->log(), std::regex("takes alerts again"))) << edge_a->log();
  auto listed = lapi_->cscli({"decisions", "list", "--origin", "snigate"}).output;
  EXPECT_NE(listed.find("app-login"), std::string::npos) << listed;  // scenario = the jail
  EXPECT_EQ(listed.find(kB6), std::string::npos) << "LAPI's own decision was pushed back:\n" << listed;
  // Edge A's bouncer meets its own ban in the stream and leaves it to the jail.
  ASSERT_TRUE(edge_a->process().wait_for(std::regex("1 kept \\(another source"), kPull)) << edge_a->log();
  EXPECT_NE(ctl_a({"bans"}).output.find("jail:app-login"), std::string::npos);

  ASSERT_TRUE(becomes(kA, "crowdsec:snigate")) << log();
  EXPECT_FALSE(serves(kA));
  EXPECT_TRUE(serves(kB));
  EXPECT_GE(drops(kA), 1);
  edge_a->stop(10s);
}

}  // namespace
}  // namespace snigate::vmtest
