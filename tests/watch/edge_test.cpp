// Jails banning for real: in the daemon through BanManager (over the fake BPF map and a real
// SQLite store), and from a backend host through the snigate-watch binary and the edge's
// remote ban channel on 127.0.6.1, including while the edge is down. The banned client is
// refused at the accept-time check within 1 s of the line that crosses maxretry (and within
// the first retry when the edge was down), and admitted again once the ban expires.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "bans/ban_manager.h"
#include "bans/fake_ban_map.h"
#include "control/remote_server.h"
#include "watch/watcher.h"

extern char** environ;

namespace snigate::watch {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using boost::asio::ip::make_address;
using Steady = std::chrono::steady_clock;

const std::string kToken = "watch-edge-test-token-0123456789";

std::string auth_failure(const std::string& client) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y/%m/%d %H:%M:%S", &tm);
  return std::string(date) + " [error] 88#88: *3 user \"root\": password mismatch, client: " + client +
         ", server: shop.example, request: \"POST /login HTTP/1.1\", host: \"shop.example\"\n";
}

void append(const fs::path& p, const std::string& text) {
  std::ofstream o(p, std::ios::app);
  o << text;
}

// Polls `pred` every 20 ms for up to `limit`; returns how long it took, or nullopt.
template <class Pred>
std::optional<Steady::duration> within(std::chrono::milliseconds limit, Pred pred) {
  auto start = Steady::now();
  while (Steady::now() - start < limit) {
    if (pred()) return Steady::now() - start;
    std::this_thread::sleep_for(20ms);
  }
  return std::nullopt;
}

class Edge : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("snigate-watch-edge-" + std::to_string(::getpid()) + "-" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    log = dir / "error.log";
    append(log, "");
    bans::BansConfig cfg;
    cfg.sweep_interval = 1s;
    cfg.store = (dir / "bans.db").string();
    std::string error;
    auto store = bans::BanStore::open(cfg.store, error);
    ASSERT_TRUE(store) << error;
    manager = bans::BanManager::create(cfg, std::make_unique<bans::FakeBanMap>(), std::move(store),
                                       std::make_shared<bans::SystemBanClock>(), nullptr, error);
    ASSERT_TRUE(manager) << error;
  }
  void TearDown() override {
    if (child > 0) {
      ::kill(child, SIGTERM);
      int status = 0;
      ::waitpid(child, &status, 0);
    }
    stop_edge();
    watcher.reset();
    manager.reset();
    fs::remove_all(dir);
  }

  void start_edge(std::uint16_t port) {
    control::RemoteBanConfig rc;
    rc.enabled = true;
    rc.listen = {make_address("127.0.6.1"), port};
    rc.tokens = {kToken};
    rc.token_names = {"tokens[0]"};
    control::ControlHandlers h;
    h.ban = [this](const bans::BanRequest& r) { return manager->ban(r); };
    h.unban = [this](const net::Prefix& p) { return manager->unban(p); };
    std::string error;
    server = control::RemoteBanServer::start(io, rc, h, error);
    ASSERT_TRUE(server) << error;
    io_thread = std::thread([this] {
      auto guard = boost::asio::make_work_guard(io);
      io.run();
    });
  }
  void stop_edge() {
    if (!io_thread.joinable()) return;
    io.stop();
    io_thread.join();
    server.reset();
  }

  fs::path dir, log;
  std::unique_ptr<bans::BanManager> manager;
  std::unique_ptr<Watcher> watcher;
  boost::asio::io_context io;
  std::unique_ptr<control::RemoteBanServer> server;
  std::thread io_thread;
  pid_t child = -1;
};

TEST_F(Edge, InDaemonJailBansThroughBanManagerUntilExpiry) {
  auto raw = toml::parse(R"(
[watch]
state_dir = ")" + (dir / "state").string() + R"("
[[jail]]
name = "shop-auth"
logpath = ")" + log.string() + R"("
filter = "nginx-http-auth"
maxretry = 3
findtime = "1m"
bantime = "2s"
ban_prefix_v6 = 64
)", std::string_view("snigated.toml"));
  watcher = start_from_config(
      raw, [this](const bans::BanRequest& r) { manager->ban(r); },
      [this](const net::Prefix& p) { return manager->history_count(p); });
  ASSERT_TRUE(watcher);
  auto client = make_address("2001:db8:6:1::77");
  append(log, auth_failure("2001:db8:6:1::77") + auth_failure("2001:db8:6:1::77"));
  // Both lines handled (a jail counts a line once the ban it caused, if any, is made): two
  // failures are not enough.
  ASSERT_TRUE(within(3000ms, [&] { return watcher->figures().at(0).lines >= 2; }))
      << "the watcher never read the two lines";
  EXPECT_FALSE(manager->banned(client));
  append(log, auth_failure("2001:db8:6:1::78"));  // same /64: the third failure
  auto took = within(3000ms, [&] { return manager->banned(client); });
  ASSERT_TRUE(took) << "not banned";
  EXPECT_LT(*took, 1s);
  auto list = manager->list();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].prefix.str(), "2001:db8:6:1::/64");
  EXPECT_EQ(list[0].jail, "shop-auth");
  EXPECT_EQ(list[0].source, "jail:shop-auth");
  EXPECT_NE(list[0].sample.find("client: 2001:db8:6:1::78"), std::string::npos);
  ASSERT_TRUE(list[0].matched_at);
  // The ban lasts bantime, then the client is admitted again.
  EXPECT_TRUE(within(4000ms, [&] { return !manager->banned(client); })) << "ban never expired";
}

TEST_F(Edge, SnigateWatchPushesToTheEdgeAndKeepsBansWhileItIsDown) {
  // A free port on our loopback block, with nothing listening yet: the edge is down.
  std::uint16_t port;
  {
    boost::asio::ip::tcp::acceptor probe(io, {make_address("127.0.6.1"), 0});
    port = probe.local_endpoint().port();
  }
  auto token_file = dir / "remote.token";
  append(token_file, kToken + "\n");
  fs::permissions(token_file, fs::perms::owner_read | fs::perms::owner_write);
  auto config = dir / "watch.toml";
  append(config, "[edge]\nendpoint = \"127.0.6.1:" + std::to_string(port) + "\"\ntoken_file = \"" +
                     token_file.string() + "\"\ntimeout = \"1s\"\n[watch]\nstate_dir = \"" +
                     (dir / "state").string() + "\"\n[[jail]]\nname = \"shop-auth\"\nlogpath = \"" +
                     log.string() + "\"\nfilter = \"nginx-http-auth\"\nmaxretry = 3\nbantime = \"1h\"\n");
  std::string bin = SNIGATE_WATCH_BIN, flag = "-c", cfg = config.string();
  char* argv[] = {bin.data(), flag.data(), cfg.data(), nullptr};
  const auto output = dir / "snigate-watch.log";
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
  const int spawned = ::posix_spawn(&child, bin.c_str(), &files, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&files);
  ASSERT_EQ(spawned, 0);
  // It follows from the end of the log, from the moment it says it is pushing bans (its
  // jails started before that line): lines written earlier are history to it.
  auto slurp_output = [&] {
    std::ifstream in(output);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  };
  ASSERT_TRUE(within(5000ms, [&] { return slurp_output().find("pushing bans to") != std::string::npos; }))
      << "snigate-watch never started:\n" << slurp_output();

  append(log, auth_failure("192.0.2.99") + auth_failure("192.0.2.99") + auth_failure("192.0.2.99"));
  auto queue = dir / "state" / "queue.jsonl";
  auto queued = within(2000ms, [&] {
    std::ifstream in(queue);
    std::string all((std::istreambuf_iterator<char>(in)), {});
    return all.find("192.0.2.99") != std::string::npos;
  });
  ASSERT_TRUE(queued) << "ban not written to the outbox while the edge is down";
  EXPECT_FALSE(manager->banned(make_address("192.0.2.99")));

  start_edge(port);
  // Backoff is 1 s, 2 s, 4 s...: the next retry lands within ~5 s of the edge coming back.
  auto took = within(8000ms, [&] { return manager->banned(make_address("192.0.2.99")); });
  ASSERT_TRUE(took) << "the queued ban never reached the edge";
  auto list = manager->list();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].jail, "shop-auth");
  EXPECT_EQ(list[0].source.rfind("remote:127.", 0), 0u) << list[0].source;
  EXPECT_NE(list[0].sample.find("client: 192.0.2.99"), std::string::npos);

  // With the edge up, a new offender is banned within 1 s of its maxretry-th line.
  append(log, auth_failure("192.0.2.98") + auth_failure("192.0.2.98"));
  std::this_thread::sleep_for(300ms);  // pacing only: the latency below is the third line's
  append(log, auth_failure("192.0.2.98"));
  took = within(3000ms, [&] { return manager->banned(make_address("192.0.2.98")); });
  ASSERT_TRUE(took);
  EXPECT_LT(*took, 1s);
  EXPECT_TRUE(within(2000ms, [&] {
    std::ifstream in(queue);
    std::string all((std::istreambuf_iterator<char>(in)), {});
    return all.empty();
  })) << "sent bans stay in the outbox";
}

}  // namespace
}  // namespace snigate::watch
