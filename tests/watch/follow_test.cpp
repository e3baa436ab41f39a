// Lines appended to a real nginx error log in a temp dir ban the client through the stock
// nginx-http-auth filter, within 1 s of the line that reaches maxretry: plain appends, rename
// rotation, copytruncate, partial lines, files that appear later, and restarts (nothing read
// twice, nothing skipped).
#include <gtest/gtest.h>

#include <unistd.h>

#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <utility>

#include "watch/follower.h"
#include "watch/watcher.h"

namespace snigate::watch {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<bans::BanRequest> bans;
  std::vector<Steady::time_point> at;

  BanSink sink() {
    return [this](const bans::BanRequest& r) {
      std::lock_guard lock(mu);
      bans.push_back(r);
      at.push_back(Steady::now());
      cv.notify_all();
    };
  }
  // Waits until `n` bans arrived; returns when the n-th arrived, or nullopt.
  std::optional<Steady::time_point> wait(std::size_t n, std::chrono::milliseconds limit) {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, limit, [&] { return bans.size() >= n; })) return std::nullopt;
    return at[n - 1];
  }
  std::size_t count() {
    std::lock_guard lock(mu);
    return bans.size();
  }
};

std::string auth_failure(const std::string& client) {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y/%m/%d %H:%M:%S", &tm);
  return std::string(date) + " [error] 4242#4242: *17 user \"admin\": password mismatch, client: " +
         client + ", server: app.example, request: \"GET /admin HTTP/1.1\", host: \"app.example\"\n";
}

void append(const fs::path& p, const std::string& text) {
  std::ofstream o(p, std::ios::app);
  o << text;
}

class Follow : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("snigate-watch-follow-" + std::to_string(::getpid()) + "-" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    log = dir / "error.log";
  }
  void TearDown() override {
    watcher.reset();
    fs::remove_all(dir);
  }
  JailConfig jail(std::string logpath = "") const {
    JailConfig c;
    c.name = "nginx-auth";
    c.logpath = {logpath.empty() ? log.string() : logpath};
    c.filter = "nginx-http-auth";
    c.maxretry = 3;
    c.findtime = 60s;
    c.bantime = 2s;
    return c;
  }
  void start(const JailConfig& c, std::string state_dir = "") {
    watcher = watch::start({c}, WatcherOptions{std::move(state_dir), rec.sink(), {}});
    ASSERT_TRUE(watcher);
  }
  // The ban arrives within 1 s of the line that crossed maxretry.
  void expect_ban_within_1s(const std::string& client, std::size_t n) {
    auto written = Steady::now();
    auto when = rec.wait(n, 3s);
    ASSERT_TRUE(when) << "no ban for " << client;
    EXPECT_LT(*when - written, 1s);
    std::lock_guard lock(rec.mu);
    EXPECT_EQ(rec.bans[n - 1].prefix.str(), client);
    EXPECT_EQ(rec.bans[n - 1].jail, "nginx-auth");
    EXPECT_NE(rec.bans[n - 1].sample.find("client: " + client), std::string::npos);
  }

  fs::path dir, log;
  Recorder rec;
  std::unique_ptr<Watcher> watcher;
};

TEST_F(Follow, AppendedLinesBanAndOldLinesDoNot) {
  // Failures already in the file at start are history: following starts at the end.
  append(log, auth_failure("192.0.2.10") + auth_failure("192.0.2.10") + auth_failure("192.0.2.10"));
  start(jail());
  append(log, auth_failure("192.0.2.11") + auth_failure("192.0.2.11"));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(rec.count(), 0u);
  append(log, auth_failure("192.0.2.11"));
  expect_ban_within_1s("192.0.2.11", 1);
  EXPECT_EQ(rec.bans[0].duration, std::chrono::seconds(2));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(rec.count(), 1u);  // 192.0.2.10's old lines never counted
}

TEST_F(Follow, RenameRotation) {
  start(jail());
  append(log, auth_failure("192.0.2.20"));
  std::this_thread::sleep_for(200ms);
  fs::rename(log, dir / "error.log.1");
  append(dir / "error.log.1", auth_failure("192.0.2.20"));  // writer not reopened yet
  append(log, "");                                           // the new file appears
  std::this_thread::sleep_for(200ms);
  append(log, auth_failure("192.0.2.20"));
  expect_ban_within_1s("192.0.2.20", 1);
}

TEST_F(Follow, CopyTruncate) {
  start(jail());
  append(log, auth_failure("192.0.2.30") + auth_failure("192.0.2.30"));
  std::this_thread::sleep_for(300ms);
  fs::copy_file(log, dir / "error.log.1");
  fs::resize_file(log, 0);
  std::this_thread::sleep_for(300ms);
  append(log, auth_failure("192.0.2.30"));
  expect_ban_within_1s("192.0.2.30", 1);
}

TEST_F(Follow, PartialLineWaitsForItsNewline) {
  start(jail());
  append(log, auth_failure("192.0.2.40") + auth_failure("192.0.2.40"));
  std::string last = auth_failure("192.0.2.40");
  append(log, last.substr(0, 40));
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(rec.count(), 0u);
  append(log, last.substr(40));
  expect_ban_within_1s("192.0.2.40", 1);
}

TEST_F(Follow, FileThatAppearsLaterIsReadFromItsStart) {
  start(jail((dir / "*.log").string()));
  std::this_thread::sleep_for(200ms);
  append(dir / "late.log", auth_failure("192.0.2.50") + auth_failure("192.0.2.50") +
                               auth_failure("192.0.2.50"));
  expect_ban_within_1s("192.0.2.50", 1);
}

TEST_F(Follow, VanishedFileComesBack) {
  start(jail());
  append(log, auth_failure("192.0.2.60"));
  std::this_thread::sleep_for(200ms);
  fs::remove(log);
  std::this_thread::sleep_for(300ms);
  append(log, auth_failure("192.0.2.60") + auth_failure("192.0.2.60"));
  expect_ban_within_1s("192.0.2.60", 1);
}

TEST_F(Follow, RestartNeitherRereadsNorSkips) {
  auto state = (dir / "state").string();
  append(log, "");
  start(jail(), state);
  append(log, auth_failure("192.0.2.70") + auth_failure("192.0.2.70"));
  std::this_thread::sleep_for(300ms);
  watcher.reset();  // stopped: positions saved
  append(log, auth_failure("192.0.2.71"));  // written while nobody watched

  start(jail(), state);
  std::this_thread::sleep_for(400ms);
  // Re-reading would have counted .70 three times (a ban); skipping would lose .71's line.
  EXPECT_EQ(rec.count(), 0u);
  append(log, auth_failure("192.0.2.71"));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(rec.count(), 0u);
  append(log, auth_failure("192.0.2.71"));
  expect_ban_within_1s("192.0.2.71", 1);
}

TEST_F(Follow, BadFilterNamesTheJail) {
  auto c = jail();
  c.filter = (dir / "missing.conf").string();
  c.where = "watch.toml:7";
  try {
    watch::start({c}, WatcherOptions{"", rec.sink(), {}});
    FAIL() << "started";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("jail 'nginx-auth' (watch.toml:7)"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace snigate::watch

namespace snigate::watch {
namespace {

// The Follower alone, scanned by hand, for the orders of events the jail thread rarely meets:
// no sleeps, so the outcome is the same on any machine.
class FollowerAlone : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("snigate-watch-follower-" + std::to_string(::getpid()) + "-" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    log = dir / "access.log";
    state = (dir / "positions").string();
  }
  void TearDown() override { fs::remove_all(dir); }
  std::unique_ptr<Follower> follow() {
    return std::make_unique<Follower>(std::vector<std::string>{log.string()},
                                      FollowerOptions{state, false, 10s},
                                      [this](const std::string&, std::string_view line) {
                                        lines.emplace_back(line);
                                      });
  }
  std::vector<std::string> take() { return std::exchange(lines, {}); }

  fs::path dir, log;
  std::string state;
  std::vector<std::string> lines;
};

using Lines = std::vector<std::string>;

TEST_F(FollowerAlone, CopyTruncateThatRegrewPastTheOffsetIsReadFromItsStart) {
  append(log, "2026-11-23 12:00:00 old line before we started\n");
  auto f = follow();
  append(log, "2026-11-23 12:00:01 a\n");
  f->scan();
  EXPECT_EQ(take(), Lines{"2026-11-23 12:00:01 a"});
  // logrotate copies and truncates, and the writer's next lines make the file longer than
  // it was before the follower looks again: only the first bytes show it is not the same.
  fs::resize_file(log, 0);
  append(log, "2026-11-23 12:05:00 b, after the truncation, longer than everything before\n"
              "2026-11-23 12:05:01 c\n");
  f->scan();
  EXPECT_EQ(take(), (Lines{"2026-11-23 12:05:00 b, after the truncation, longer than everything before",
                           "2026-11-23 12:05:01 c"}));
  append(log, "2026-11-23 12:05:02 d\n");
  f->scan();
  EXPECT_EQ(take(), Lines{"2026-11-23 12:05:02 d"});
}

TEST_F(FollowerAlone, FileReplacedWhileStoppedIsReadFromItsStart) {
  append(log, "2026-11-23 12:00:00 before\n");
  auto f = follow();
  append(log, "2026-11-23 12:00:01 a\n");
  f->scan();
  EXPECT_EQ(take(), Lines{"2026-11-23 12:00:01 a"});
  f.reset();  // stopped: position saved
  fs::rename(log, dir / "access.log.1");
  append(log, "2026-11-23 12:10:00 e\n2026-11-23 12:10:01 f\n");
  f = follow();
  f->scan();
  EXPECT_EQ(take(), (Lines{"2026-11-23 12:10:00 e", "2026-11-23 12:10:01 f"}));
}

TEST_F(FollowerAlone, FileTruncatedWhileStoppedIsReadFromItsStart) {
  append(log, "2026-11-23 12:00:00 before\n2026-11-23 12:00:01 more before\n");
  auto f = follow();
  f.reset();
  fs::resize_file(log, 0);
  append(log, "2026-11-23 12:20:00 g\n");
  f = follow();
  f->scan();
  EXPECT_EQ(take(), Lines{"2026-11-23 12:20:00 g"});
}

}  // namespace
}  // namespace snigate::watch
