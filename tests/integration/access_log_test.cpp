// The access log as an operator meets it: rotated (renamed away, then SIGUSR1 or
// `snigatectl reopen-logs`) without a line lost or written twice, and as JSON lines.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <set>
#include <sstream>

#include <fmt/chrono.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

constexpr const char* kAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

RawServer::Handler answer_once() {
  return [](int fd) {
    std::string head;
    char c;
    while (head.find("\r\n\r\n") == std::string::npos && recv(fd, &c, 1, 0) == 1) head += c;
    send_all(fd, kAnswer);
  };
}

// One request through the daemon with `Host: NAME`, answered and closed.
void request(std::uint16_t port, const std::string& name) {
  int fd = connect_to("127.0.3.1", port, "127.0.3.50", 5s);
  send_all(fd, "GET / HTTP/1.1\r\nHost: " + name + "\r\n\r\n");
  recv_until_eof(fd);
  close(fd);
}

std::vector<std::string> lines_of(const fs::path& path) {
  std::vector<std::string> out;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The connection numbers (Host: cN.test) logged in `path`, in file order.
std::vector<int> numbers_in(const fs::path& path) {
  std::vector<int> out;
  const std::regex name(R"( name=c(\d+)\.test )");
  for (const auto& line : lines_of(path)) {
    std::smatch m;
    if (std::regex_search(line, m, name)) out.push_back(std::stoi(m[1]));
  }
  return out;
}

// Connections run one after another on a thread while the log is renamed and `reopen` asks
// the daemon to reopen it: each connection's line is in one of the two files exactly once,
// those logged before the rename in the renamed file, those begun after the reopen in the new
// one; and the new file has the mode the old one had, whatever the daemon's umask.
void rotate_under_load(const std::function<void(Snigated&)>& reopen) {
  TempDir dir;
  RawServer backend("127.0.3.1", answer_once());
  // The daemon's umask would make 0600 files; the operator's 0644 must survive the rotation.
  const mode_t umask_was = umask(077);
  Snigated d(dir, http_config(backend.port()));
  umask(umask_was);
  const fs::path log = dir / "access.log", rotated = dir / "access.log.1";
  constexpr int kTotal = 40;
  std::atomic<int> done{0};
  std::string client_error;
  std::thread client([&] {
    try {
      for (int i = 0; i < kTotal; ++i, ++done)
        request(d.port("http"), "c" + std::to_string(i) + ".test");
    } catch (const std::exception& e) {
      client_error = e.what();
    }
  });
  // Rotate mid-run: once some lines are in the first file.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (numbers_in(log).size() < 10 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  ASSERT_EQ(chmod(log.c_str(), 0644), 0);
  const auto logged_before = numbers_in(log);
  fs::rename(log, rotated);
  reopen(d);
  const bool reopened = d.process().wait_for(std::regex("access log reopened")).has_value();
  // Connections from this number on began after the daemon had reopened the file.
  const int begun_after = done.load() + 1;
  client.join();
  ASSERT_EQ(client_error, "");
  ASSERT_GE(logged_before.size(), 10u) << d.process().log();
  ASSERT_TRUE(reopened) << d.process().log();
  const std::string next = "c" + std::to_string(kTotal) + ".test";
  request(d.port("http"), next);
  ASSERT_NE(d.wait_access(std::regex(" name=" + next + " ")), "")
      << "the line of the connection after the reopen is not in the new file\n"
      << d.process().log();

  const auto before = numbers_in(rotated), after = numbers_in(log);
  std::vector<int> all = before;
  all.insert(all.end(), after.begin(), after.end());
  std::sort(all.begin(), all.end());
  std::vector<int> each(kTotal + 1);
  std::iota(each.begin(), each.end(), 0);
  EXPECT_EQ(all, each) << "a line lost or written twice; renamed file:\n"
                       << read_file(rotated) << "new file:\n" << read_file(log);
  EXPECT_EQ(lines_of(rotated).size() + lines_of(log).size(), std::size_t{kTotal + 1})
      << "a line that is no connection's";
  const std::set<int> in_before(before.begin(), before.end()), in_after(after.begin(), after.end());
  for (int n : logged_before)
    EXPECT_TRUE(in_before.count(n)) << "c" << n << " left the renamed file";
  for (int n = begun_after; n <= kTotal; ++n)
    EXPECT_TRUE(in_after.count(n)) << "c" << n << " began after the reopen, not in the new file";
  struct stat st {};
  ASSERT_EQ(stat(log.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u) << "the new file should keep the rotated one's mode";
}

TEST(AccessLogRotation, Sigusr1ReopensWithoutLosingALine) {
  rotate_under_load([](Snigated& d) { d.process().signal(SIGUSR1); });
}

TEST(AccessLogRotation, SnigatectlReopenLogsReopensWithoutLosingALine) {
  rotate_under_load([](Snigated& d) {
    RunResult r = run({SNIGATECTL_PATH, "-c", d.config_path().string(), "reopen-logs"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "logs reopened\n");
  });
}

// Lines are written in batches: the daemon stopping right after its connections still
// leaves every one of their lines in the file, none twice.
TEST(AccessLogBatches, StopRightAfterTheConnectionsKeepsEveryLine) {
  TempDir dir;
  RawServer backend("127.0.3.1", answer_once());
  Snigated d(dir, http_config(backend.port()));
  constexpr int kTotal = 20;
  for (int i = 0; i < kTotal; ++i) request(d.port("http"), "c" + std::to_string(i) + ".test");
  ASSERT_EQ(d.process().stop(SIGTERM, 10s), 0) << d.process().log();
  std::vector<int> each(kTotal);
  std::iota(each.begin(), each.end(), 0);
  auto got = numbers_in(dir / "access.log");
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, each) << read_file(dir / "access.log");
}

// A file that takes no lines for a while (a pipe nobody reads, a hung disk) does not hold up
// connections: the flusher waits for it while the event loop goes on serving, and once the
// file takes lines again every one arrives, in order.
TEST(AccessLogBatches, AStalledFileDoesNotHoldUpConnections) {
  TempDir dir;
  RawServer backend("127.0.3.1", answer_once());
  const fs::path fifo = dir / "access.log";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // Open for reading (so the daemon's open does not wait) but not read: a 64 KiB pipe fills.
  const int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  Snigated d(dir, http_config(backend.port(), "workers = 1\n"));
  // ~250 B a line: four times what the pipe and one batch hold, well under the 1 MiB at
  // which the event loop waits for the file.
  constexpr int kTotal = 1000;
  int served = 0;
  for (; served < kTotal; ++served) {
    int fd = connect_to("127.0.3.1", d.port("http"), "127.0.3.50", 5s);
    send_all(fd, "GET / HTTP/1.1\r\nHost: c" + std::to_string(served) + ".test\r\n\r\n");
    const std::string got = recv_until_eof(fd);
    close(fd);
    if (got != kAnswer) break;
  }
  EXPECT_EQ(served, kTotal) << "connection " << served << " was not answered while the log "
                                                          "file took no lines";
  // The file takes lines again: all of them come, in order.
  std::string text;
  const std::regex name(R"( name=c(\d+)\.test )");
  std::vector<int> got;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (static_cast<int>(got.size()) < served && std::chrono::steady_clock::now() < deadline) {
    char buf[65536];
    const ssize_t n = read(reader, buf, sizeof buf);
    if (n <= 0) {
      std::this_thread::sleep_for(10ms);
      continue;
    }
    text.append(buf, static_cast<std::size_t>(n));
    for (auto nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n')) {
      std::smatch m;
      const std::string line = text.substr(0, nl);
      if (std::regex_search(line, m, name)) got.push_back(std::stoi(m[1]));
      text.erase(0, nl + 1);
    }
  }
  close(reader);
  std::vector<int> each(static_cast<std::size_t>(served));
  std::iota(each.begin(), each.end(), 0);
  EXPECT_EQ(got, each) << "a line lost, repeated or out of order";
}

// A reopen that cannot open the path keeps the old file, and snigatectl says why.
TEST(AccessLogRotation, ReopenThatCannotOpenKeepsTheOldFile) {
  TempDir dir;
  RawServer backend("127.0.3.1", answer_once());
  Snigated d(dir, http_config(backend.port()));
  const fs::path log = dir / "access.log", rotated = dir / "access.log.1";
  request(d.port("http"), "c0.test");
  ASSERT_NE(d.wait_access(std::regex(R"( name=c0\.test )")), "");
  fs::rename(log, rotated);
  fs::create_directory(log);  // a directory where the file should be: no file can be opened
  RunResult r = run({SNIGATECTL_PATH, "-c", d.config_path().string(), "reopen-logs"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot open " + log.string()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("still writing to the file it had open"), std::string::npos) << r.output;
  request(d.port("http"), "c1.test");
  // Bounded wait for the line in the file the daemon kept.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (numbers_in(rotated).size() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(numbers_in(rotated), (std::vector<int>{0, 1}));
}

// contrib/logrotate/snigate as logrotate runs it, with its paths pointed at this test's daemon:
// the rotated file keeps the earlier line, the next connection's goes to a new file. Through
// snigatectl, and through the SIGUSR1 fallback when snigatectl cannot reach the daemon (aimed
// at this daemon's pid: the shipped `pkill -x snigated` would reach every snigated here).
void rotate_with_logrotate(bool snigatectl_reaches_daemon) {
  TempDir dir;
  RawServer backend("127.0.3.1", answer_once());
  Snigated d(dir, http_config(backend.port()));
  const fs::path log = dir / "access.log";
  request(d.port("http"), "c0.test");
  ASSERT_NE(d.wait_access(std::regex(R"( name=c0\.test )")), "");

  std::string conf = read_file(fs::path(SNIGATE_SOURCE_DIR) / "contrib/logrotate/snigate");
  const std::string ctl = std::string(SNIGATECTL_PATH) +
                          (snigatectl_reaches_daemon ? " -c " + d.config_path().string()
                                                     : " --socket " + (dir / "none.sock").string());
  const std::string kill = "kill -USR1 " + std::to_string(d.process().pid());
  for (auto [from, to] : {std::pair<std::string, std::string>{"/var/log/snigate/access.log", log},
                          {"snigatectl -c /etc/snigate/snigated.toml", ctl},
                          {"pkill -USR1 -x snigated", kill}}) {
    auto at = conf.find(from);
    ASSERT_NE(at, std::string::npos) << "contrib/logrotate/snigate no longer has " << from;
    conf.replace(at, from.size(), to);
  }
  write_file(dir / "logrotate.conf", conf);
  RunResult r = run({"logrotate", "-f", "-s", (dir / "logrotate.state").string(),
                     (dir / "logrotate.conf").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(d.process().wait_for(std::regex("access log reopened"))) << d.process().log();
  request(d.port("http"), "c1.test");
  ASSERT_NE(d.wait_access(std::regex(R"( name=c1\.test )")), "") << d.process().log();
  EXPECT_EQ(numbers_in(dir / "access.log.1"), std::vector<int>{0});
  EXPECT_EQ(numbers_in(log), std::vector<int>{1});
}

TEST(AccessLogRotation, ShippedLogrotateFileReopensThroughSnigatectl) {
  rotate_with_logrotate(true);
}

TEST(AccessLogRotation, ShippedLogrotateFileFallsBackToSigusr1) { rotate_with_logrotate(false); }

TEST(AccessLogJson, EachLineIsAnObjectWithTheFieldsOfTheTextLine) {
  TempDir dir;
  RawServer backend("127.0.3.1", answer_once());
  // A zone 5:30 off UTC (a POSIX TZ, no tzdata needed): "time" must still be UTC.
  Snigated d(dir, http_config(backend.port(), "access_log_format = \"json\""), {},
             {"env", "TZ=XST-5:30"});
  request(d.port("http"), "j.test");
  int fd = connect_to("127.0.3.1", d.port("http"), "127.0.3.51", 5s);
  send_all(fd, "NOT HTTP\r\n\r\n");  // ends at the preread: no backend, never connected
  recv_until_eof(fd);
  close(fd);
  ASSERT_NE(d.wait_access(std::regex("127\\.0\\.3\\.51")), "") << d.process().log();

  const auto lines = lines_of(dir / "access.log");
  ASSERT_EQ(lines.size(), 2u) << d.access_log();
  std::vector<nlohmann::json> objects;
  for (const auto& line : lines) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "not a JSON object: " << line;
    objects.push_back(j);
  }
  auto& ok = objects[0]["name"] == "j.test" ? objects[0] : objects[1];
  auto& bad = &ok == &objects[0] ? objects[1] : objects[0];
  EXPECT_TRUE(std::regex_match(ok["time"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << ok;
  const auto utc_minute = [](std::chrono::system_clock::time_point t) {
    return fmt::format("{:%Y-%m-%dT%H:%M}", fmt::gmtime(std::chrono::system_clock::to_time_t(t)));
  };
  const auto now = std::chrono::system_clock::now();
  const std::string minute = ok["time"].get<std::string>().substr(0, 16);
  EXPECT_TRUE(minute == utc_minute(now) || minute == utc_minute(now - std::chrono::minutes(1)))
      << ok["time"] << " is not UTC now, " << utc_minute(now);
  EXPECT_TRUE(ok["client"].get<std::string>().starts_with("127.0.3.50:")) << ok;
  EXPECT_EQ(ok["listener"], "http");
  EXPECT_EQ(ok["name"], "j.test");
  EXPECT_EQ(ok["backend"], "b");
  EXPECT_EQ(ok["upstream"], "127.0.3.1:" + std::to_string(backend.port()));
  EXPECT_GT(ok["in"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(ok["out"], std::string(kAnswer).size());
  EXPECT_TRUE(ok["connect_ms"].is_number()) << ok;
  EXPECT_TRUE(ok["duration_ms"].is_number()) << ok;
  EXPECT_EQ(ok["end"], "clean");
  EXPECT_TRUE(ok["relay"].is_string() && !ok["relay"].get<std::string>().empty()) << ok;

  EXPECT_TRUE(bad["client"].get<std::string>().starts_with("127.0.3.51:")) << bad;
  EXPECT_EQ(bad["backend"], "");
  EXPECT_TRUE(bad["connect_ms"].is_null()) << bad;
  EXPECT_NE(bad["end"], "clean") << bad;
  EXPECT_EQ(bad["out"], 0);
}

}  // namespace
}  // namespace snigate::itest
