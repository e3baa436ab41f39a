// Lines appended to a real nginx error log in a temp dir ban the client through the stock
// nginx-http-auth filter, within 1 s of the line that reaches maxretry: plain appends, rename
// rotation, copytruncate, partial lines, files that appear later, and restarts (nothing read
// twice, nothing skipped).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
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
    watcher = watch::start({c}, WatcherOptions{std::move(state_dir), rec.sink(), {}, {}});
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

  // Proof, without a sleep, that the watcher has handled every line written to `file` so
  // far: a sentinel client's maxretry failures written after them ban it, and the watcher
  // handles a file's lines in order on one thread. A ban that arrives first fails here.
  void caught_up(const std::string& sentinel, const fs::path& file) {
    const auto n = rec.count() + 1;
    std::string lines;
    for (int i = 0; i < jail().maxretry; ++i) lines += auth_failure(sentinel);
    append(file, lines);
    ASSERT_TRUE(rec.wait(n, 3s)) << "the sentinel " << sentinel << " was never banned";
    std::lock_guard lock(rec.mu);
    ASSERT_EQ(rec.bans[n - 1].prefix.str(), sentinel) << "a ban came before the sentinel's";
  }
  void caught_up(const std::string& sentinel) { caught_up(sentinel, log); }
  // Waits until the watcher has handled `n` lines in all (the jail counts a line once its
  // ban, if any, reached the sink): what a case waits for, instead of a sleep, before it
  // rotates, truncates or removes the file under the watcher.
  void handled(std::uint64_t n) {
    auto lines = [&] { return watcher->figures().at(0).lines; };
    for (auto end = Steady::now() + 3s; lines() < n && Steady::now() < end;)
      std::this_thread::sleep_for(5ms);  // paces the poll; the count is the proof
    ASSERT_GE(lines(), n) << "the watcher never read line " << n;
  }
  std::vector<std::string> banned() {
    std::lock_guard lock(rec.mu);
    std::vector<std::string> out;
    for (const auto& b : rec.bans) out.push_back(b.prefix.str());
    return out;
  }

  fs::path dir, log;
  Recorder rec;
  std::unique_ptr<Watcher> watcher;
};

using Clients = std::vector<std::string>;

TEST_F(Follow, AppendedLinesBanAndOldLinesDoNot) {
  // Failures already in the file at start are history: following starts at the end.
  append(log, auth_failure("192.0.2.10") + auth_failure("192.0.2.10") + auth_failure("192.0.2.10"));
  start(jail());
  append(log, auth_failure("192.0.2.11") + auth_failure("192.0.2.11"));
  caught_up("192.0.2.99");
  // Two failures of .11 are not enough, and .10's old lines never counted.
  EXPECT_EQ(banned(), Clients{"192.0.2.99"});
  append(log, auth_failure("192.0.2.11"));
  expect_ban_within_1s("192.0.2.11", 2);
  EXPECT_EQ(rec.bans[1].duration, std::chrono::seconds(2));
}

TEST_F(Follow, RenameRotation) {
  start(jail());
  append(log, auth_failure("192.0.2.20"));
  ASSERT_NO_FATAL_FAILURE(handled(1));  // read before the rotation
  fs::rename(log, dir / "error.log.1");
  append(dir / "error.log.1", auth_failure("192.0.2.20"));  // writer not reopened yet
  append(log, "");                                           // the new file appears
  ASSERT_NO_FATAL_FAILURE(handled(2));  // the late write to the renamed file
  append(log, auth_failure("192.0.2.20"));
  expect_ban_within_1s("192.0.2.20", 1);
}

TEST_F(Follow, CopyTruncate) {
  start(jail());
  append(log, auth_failure("192.0.2.30") + auth_failure("192.0.2.30"));
  ASSERT_NO_FATAL_FAILURE(handled(2));  // counted before the truncation, or lost with it
  fs::copy_file(log, dir / "error.log.1");
  fs::resize_file(log, 0);
  // Whether or not a scan sees the empty file first, the file is then shorter than the
  // offset: truncated, read from its start (FollowerAlone pins each order down by hand).
  append(log, auth_failure("192.0.2.30"));
  expect_ban_within_1s("192.0.2.30", 1);
}

TEST_F(Follow, PartialLineWaitsForItsNewline) {
  // The sentinels go to a second file: in the first they would complete the partial line.
  const auto other = dir / "other.log";
  append(other, "");
  auto c = jail();
  c.logpath.push_back(other.string());
  start(c);
  append(log, auth_failure("192.0.2.40") + auth_failure("192.0.2.40"));
  std::string last = auth_failure("192.0.2.40");
  append(log, last.substr(0, 40));
  // Each scan reads every file, and the second sentinel's lines are read by a scan that
  // began after the first sentinel's ban, so after the partial line was written.
  caught_up("192.0.2.98", other);
  caught_up("192.0.2.99", other);
  EXPECT_EQ(banned(), (Clients{"192.0.2.98", "192.0.2.99"}));
  append(log, last.substr(40));
  expect_ban_within_1s("192.0.2.40", 3);
}

TEST_F(Follow, FileThatAppearsLaterIsReadFromItsStart) {
  start(jail((dir / "*.log").string()));  // looked for its files before it returned
  append(dir / "late.log", auth_failure("192.0.2.50") + auth_failure("192.0.2.50") +
                               auth_failure("192.0.2.50"));
  expect_ban_within_1s("192.0.2.50", 1);
}

TEST_F(Follow, VanishedFileComesBack) {
  start(jail());
  append(log, auth_failure("192.0.2.60"));
  ASSERT_NO_FATAL_FAILURE(handled(1));
  // Whether or not a scan sees the file gone, the one that comes back is another inode:
  // a new file, read from its start.
  fs::remove(log);
  append(log, auth_failure("192.0.2.60") + auth_failure("192.0.2.60"));
  expect_ban_within_1s("192.0.2.60", 1);
}

TEST_F(Follow, RestartNeitherRereadsNorSkips) {
  auto state = (dir / "state").string();
  append(log, "");
  start(jail(), state);
  append(log, auth_failure("192.0.2.70") + auth_failure("192.0.2.70"));
  caught_up("192.0.2.99");
  watcher.reset();  // stopped: positions saved
  append(log, auth_failure("192.0.2.71"));  // written while nobody watched

  start(jail(), state);
  append(log, auth_failure("192.0.2.71"));
  caught_up("192.0.2.98");
  // Re-reading would have counted .70 four times and .99 again (bans); skipping would lose
  // .71's line, which the next one shows.
  EXPECT_EQ(banned(), (Clients{"192.0.2.99", "192.0.2.98"}));
  append(log, auth_failure("192.0.2.71"));
  expect_ban_within_1s("192.0.2.71", 3);
}

// Failures counted before a stop still count after it: positions are never re-read, so a
// count lost at the stop would be lost for good.
TEST_F(Follow, RestartKeepsFailureCounts) {
  auto state = (dir / "state").string();
  append(log, "");
  start(jail(), state);
  append(log, auth_failure("192.0.2.72") + auth_failure("192.0.2.72"));
  caught_up("192.0.2.99");  // the two failures were counted before the stop
  watcher.reset();
  EXPECT_TRUE(fs::exists(dir / "state" / "nginx-auth.failures"));
  start(jail(), state);
  append(log, auth_failure("192.0.2.72"));
  expect_ban_within_1s("192.0.2.72", 2);
}

// The state files name log files and clients: owner-only, whatever the umask (issue 15).
TEST_F(Follow, StateFilesAreReadableByTheOwnerOnly) {
  auto state = (dir / "state").string();
  const mode_t old_umask = ::umask(022);
  append(log, "");
  start(jail(), state);
  append(log, auth_failure("192.0.2.73"));
  handled(1);  // a failure counted (not ASSERT: the umask is restored below)
  watcher.reset();
  ::umask(old_umask);
  for (const char* name : {"nginx-auth.pos", "nginx-auth.failures"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(fs::exists(dir / "state" / name));
    EXPECT_EQ(fs::status(dir / "state" / name).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
  }
}

TEST_F(Follow, BadFilterNamesTheJail) {
  auto c = jail();
  c.filter = (dir / "missing.conf").string();
  c.where = "watch.toml:7";
  try {
    watch::start({c}, WatcherOptions{"", rec.sink(), {}, {}});
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

namespace snigate::watch {
namespace {

// Hostile files: what a local user who can write the log directory (or the log) can do to a
// watcher, which must neither hang nor read a line the writer did not write.
class FollowerHostile : public FollowerAlone {
 protected:
  // Scans until nothing is left (each scan reads at most read_budget bytes of a file).
  static void drain(Follower& f) {
    for (int i = 0; i < 100 && f.scan(); ++i) {
    }
  }
  std::unique_ptr<Follower> follow_glob(const std::string& pattern) {
    return std::make_unique<Follower>(std::vector<std::string>{pattern},
                                      FollowerOptions{state, false, 10s},
                                      [this](const std::string&, std::string_view line) {
                                        lines.emplace_back(line);
                                      });
  }
};

// Runs `work` on a thread of its own; if it has not returned within 5 s it is blocked in
// open(2) on `fifo`, so the FIFO is opened for writing to let it go, and the test fails.
void expect_returns(const fs::path& fifo, const std::function<void()>& work) {
  std::promise<void> done;
  auto returned = done.get_future();
  std::thread t([&] {
    work();
    done.set_value();
  });
  bool hung = returned.wait_for(5s) != std::future_status::ready;
  if (hung) {
    int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    t.join();
    if (w >= 0) ::close(w);
  } else {
    t.join();
  }
  EXPECT_FALSE(hung) << "the follower blocked opening the FIFO " << fifo;
}

TEST_F(FollowerHostile, FifoInPlaceOfTheLogIsNeverOpenedForReading) {
  ASSERT_EQ(::mkfifo(log.c_str(), 0600), 0);
  std::unique_ptr<Follower> f;
  expect_returns(log, [&] { f = follow(); });
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->followed().empty());
  // Swapped back for a regular file: followed from its start, as any file that appears.
  fs::remove(log);
  append(log, "2026-11-23 12:00:00 a\n");
  f->scan();
  EXPECT_EQ(take(), Lines{"2026-11-23 12:00:00 a"});
}

// The report's attack: the log's name swapped between a regular file and a FIFO (link and
// rename in a loop), so a stat before the open sees a file and the open meets the FIFO. Scans
// race the swaps for 2 s; none may block (all of them used to, once the race was hit).
TEST_F(FollowerHostile, LogSwappedWithAFifoNeverBlocksAScan) {
  const auto regular = dir / "regular.keep", fifo = dir / "fifo.keep", tmp = dir / "swap.tmp";
  append(regular, "2026-11-23 12:00:00 x\n");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto f = follow();
  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    for (bool to_fifo = true; !stop; to_fifo = !to_fifo) {
      ::link((to_fifo ? fifo : regular).c_str(), tmp.c_str());
      ::rename(tmp.c_str(), log.c_str());
    }
  });
  std::size_t scans = 0;
  expect_returns(fifo, [&] {
    for (auto end = Steady::now() + 2s; Steady::now() < end; ++scans) f->scan();
  });
  stop = true;
  swapper.join();
  EXPECT_GT(scans, 0u);
  std::cout << "[ scans    ] " << scans << " scans raced the swaps\n";
}

// Files created under a glob cost the daemon a descriptor each: their number is capped.
TEST_F(FollowerHostile, FilesCreatedUnderTheGlobCannotExhaustDescriptors) {
  FollowerOptions options{state, false, 10s};
  options.max_files = 3;
  Follower f({(dir / "*.log").string()}, options,
             [this](const std::string&, std::string_view line) { lines.emplace_back(line); });
  for (int i = 0; i < 10; ++i) append(dir / ("flood" + std::to_string(i) + ".log"), "x\n");
  f.scan();
  EXPECT_EQ(f.followed().size(), 3u);
}

// A big file that appears (read from its start) is read over many scans, a bounded amount
// each, so the watcher thread sees stop and reload between them; no line is lost or doubled.
TEST_F(FollowerHostile, BigBacklogIsReadOverManyBoundedScans) {
  FollowerOptions options{state, false, 10s};
  options.read_budget = 1000;
  Follower f({(dir / "*.log").string()}, options,
             [this](const std::string&, std::string_view line) { lines.emplace_back(line); });
  Lines expected;
  std::string backlog;
  for (int i = 0; i < 50; ++i) {
    expected.push_back("2026-11-23 12:00:00 line " + std::to_string(i) + std::string(70, '.'));
    backlog += expected.back() + "\n";
  }
  append(dir / "big.log", backlog);
  EXPECT_TRUE(f.scan());  // more to read
  EXPECT_LE(lines.size(), 11u);
  for (int i = 0; i < 100 && f.scan(); ++i) {
  }
  EXPECT_EQ(take(), expected);
}

TEST_F(FollowerHostile, RestOfALineLongerThanTheCutIsNotReadAsANewLine) {
  append(log, "");
  auto f = follow();
  // An access-log line from 192.0.2.1 padded so a forged line begins right after the 1 MiB
  // cut: it must not reach the filter as a line of its own.
  std::string forged = "198.51.100.66 - - [23/Nov/2026:12:00:00 +0000] \"GET /phpmyadmin HTTP/1.1\" 404";
  // The follower reads 64 KiB at a time; 17 of them is the first read past the 1 MiB cut.
  std::string real = "192.0.2.1 - - [23/Nov/2026:12:00:00 +0000] \"GET /?q=";
  real.append(17 * 64 * 1024 - real.size(), 'a');
  append(log, real + forged + "\n2026-11-23 12:00:02 next\n");
  drain(*f);
  auto got = take();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], real.substr(0, 1024 * 1024));  // the cut line, up to the cut
  EXPECT_EQ(got[1], "2026-11-23 12:00:02 next");
}

TEST_F(FollowerHostile, RestOfACutLineIsSkippedAcrossScansAndARestart) {
  append(log, "");
  auto f = follow();
  std::string real = "192.0.2.1 - - \"GET /?q=";
  real.append(1024 * 1024 + 10 - real.size(), 'a');
  append(log, real);  // no newline yet: the line is cut, its rest still to come
  drain(*f);
  ASSERT_EQ(take().size(), 1u);
  append(log, "198.51.100.66 forged part one ");
  drain(*f);
  f.reset();  // stopped in the middle of the cut line's rest
  append(log, "198.51.100.66 forged part two\n2026-11-23 12:00:03 after\n");
  f = follow();
  drain(*f);
  EXPECT_EQ(take(), Lines{"2026-11-23 12:00:03 after"});
}

TEST_F(FollowerHostile, RenamedFileThatStillMatchesTheGlobIsNotReadAgain) {
  append(log, "");
  auto f = follow_glob((dir / "access*").string());
  append(log, "2026-11-23 12:00:00 fail 1\n2026-11-23 12:00:01 fail 2\n");
  f->scan();
  EXPECT_EQ(take().size(), 2u);
  // logrotate without copytruncate: the old file keeps matching the glob as access.log.1.
  fs::rename(log, dir / "access.log.1");
  append(log, "");
  f->scan();
  EXPECT_EQ(take(), Lines{});
  append(dir / "access.log.1", "2026-11-23 12:00:02 late write to the old file\n");
  append(log, "2026-11-23 12:00:03 new file\n");
  f->scan();
  auto got = take();
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (Lines{"2026-11-23 12:00:02 late write to the old file",
                        "2026-11-23 12:00:03 new file"}));
}

TEST_F(FollowerHostile, FileRenamedWhileStoppedGoesOnFromItsPosition) {
  append(log, "");
  auto f = follow_glob((dir / "*.log*").string());
  append(log, "2026-11-23 12:00:00 fail 1\n");
  f->scan();
  EXPECT_EQ(take().size(), 1u);
  f.reset();
  fs::rename(log, dir / "access.log.1");
  append(dir / "access.log.1", "2026-11-23 12:00:01 written while stopped\n");
  append(log, "2026-11-23 12:00:02 new file\n");
  f = follow_glob((dir / "*.log*").string());
  f->scan();
  auto got = take();
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (Lines{"2026-11-23 12:00:01 written while stopped", "2026-11-23 12:00:02 new file"}));
}

TEST_F(FollowerHostile, CopyTruncateWhileStoppedThatRegrewPastTheOffsetIsReadFromItsStart) {
  append(log, "2026-11-23 12:00:00 x\n");
  auto f = follow();
  append(log, "2026-11-23 12:00:01 a\n");
  f->scan();
  EXPECT_EQ(take(), Lines{"2026-11-23 12:00:01 a"});
  f.reset();
  fs::resize_file(log, 0);
  append(log, "2026-11-23 13:00:00 b, after the truncation, longer than everything before it\n");
  f = follow();
  f->scan();
  EXPECT_EQ(take(), Lines{"2026-11-23 13:00:00 b, after the truncation, longer than everything before it"});
}

}  // namespace
}  // namespace snigate::watch
