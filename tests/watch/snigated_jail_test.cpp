// The whole path in the real snigated, on 127.0.6.0/24: a backend (standing in for nginx)
// reads the client's address from the PROXY header the edge sends and logs it in nginx's
// error and access formats; the daemon's [[jail]]s follow those logs with the stock
// nginx-http-auth and nginx-botsearch filters and ban that client at the edge within 1 s of
// the line that reaches maxretry, also across rotation by rename and by copytruncate.
// `snigatectl bans` shows the jail, the line's time and the line; others are still served;
// once bantime passes the banned clients connect again. With ban_prefix_v6 = 64 the IPv6
// client (::1, through a [::1] listener) is banned with its /64.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "integration/harness.h"

namespace {

namespace fs = std::filesystem;
namespace itest = snigate::itest;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

sockaddr_in sockaddr_of(const std::string& ip, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

void set_timeout(int fd, std::chrono::milliseconds t) {
  timeval tv{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>((t.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

std::string strtime(const char* format, std::time_t t) {
  std::tm tm{};
  localtime_r(&t, &tm);
  char out[64];
  std::strftime(out, sizeof out, format, &tm);
  return out;
}

// A log file held open with O_APPEND, as nginx holds its logs: renaming it away does not
// move the writer, reopen() (nginx -s reopen) does; a truncation lets it go on at the start.
class NginxLog {
 public:
  explicit NginxLog(fs::path path) : path_(std::move(path)) { reopen(); }
  ~NginxLog() { ::close(fd_); }
  void reopen() {
    std::lock_guard lock(mu_);
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  }
  Steady::time_point write(const std::string& line) {
    std::lock_guard lock(mu_);
    EXPECT_EQ(::write(fd_, line.data(), line.size()), static_cast<ssize_t>(line.size()));
    return Steady::now();
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  std::mutex mu_;
  int fd_ = -1;
};

// The nginx stand-in on 127.0.6.1: expects the edge's PROXY v1 header and logs the client it
// names, as nginx does with `real_ip_header proxy_protocol`. GET /admin is a failed basic
// auth (error log, 401); GET /phpmyadmin/... a bot probe (access log, 404); else 200 "backend".
class Backend {
 public:
  Backend(const fs::path& dir) : error_log(dir / "error.log"), access_log(dir / "access.log") {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto a = sockaddr_of("127.0.6.1", 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::listen(fd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        sockaddr_in peer{};
        socklen_t plen = sizeof peer;
        int c = ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_CLOEXEC);
        if (c < 0) continue;
        serve(c, peer);
        ::close(c);
      }
    });
  }
  ~Backend() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }
  // When the last failure line was written, and the TCP peers seen (the edge, not clients).
  Steady::time_point last_failure_logged() {
    std::lock_guard lock(mu_);
    return last_failure_;
  }
  std::vector<std::string> tcp_peers() {
    std::lock_guard lock(mu_);
    return peers_;
  }

  NginxLog error_log, access_log;

 private:
  void serve(int c, const sockaddr_in& peer) {
    set_timeout(c, 3s);
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
      auto n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      head.append(buf, static_cast<std::size_t>(n));
    }
    std::smatch m;
    static const std::regex proxy(R"(^PROXY TCP[46] (\S+) \S+ \d+ \d+\r\n(GET|POST) (\S+) )");
    if (!std::regex_search(head, m, proxy)) return;  // no PROXY header: nothing to log by
    const std::string client = m[1], path = m[3];
    char peer_ip[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &peer.sin_addr, peer_ip, sizeof peer_ip);
    std::time_t now = std::time(nullptr);
    int status = 200;
    std::string body = "backend";
    if (path == "/admin") {
      status = 401;
      body = "denied";
      auto at = error_log.write(strtime("%Y/%m/%d %H:%M:%S", now) +
                                " [error] 31#31: *" + std::to_string(++requests_) +
                                " user \"admin\": password mismatch, client: " + client +
                                ", server: app.test, request: \"GET /admin HTTP/1.1\", host: "
                                "\"app.test\"\n");
      std::lock_guard lock(mu_);
      last_failure_ = at;
    } else if (path.rfind("/phpmyadmin", 0) == 0) {
      status = 404;
      body = "nothing";
    }
    auto at = access_log.write(client + " - - [" + strtime("%d/%b/%Y:%H:%M:%S %z", now) + "] \"GET " +
                               path + " HTTP/1.1\" " + std::to_string(status) + " " +
                               std::to_string(body.size()) + " \"-\" \"curl/7.88.1\"\n");
    {
      std::lock_guard lock(mu_);
      if (status == 404) last_failure_ = at;
      peers_.push_back(peer_ip);
    }
    std::string reply = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    ::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
  }

  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  Steady::time_point last_failure_{};
  std::vector<std::string> peers_;
  unsigned requests_ = 0;
  std::thread thread_;
};

// One request from `source` through the edge (127.0.6.1, or ::1 for the source ::1); what
// came back (empty when refused).
std::string get_from(const std::string& source, std::uint16_t port, const std::string& path) {
  const bool v6 = source.find(':') != std::string::npos;
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  set_timeout(fd, 3s);
  sockaddr_in6 dst6{};
  dst6.sin6_family = AF_INET6;
  dst6.sin6_port = htons(port);
  dst6.sin6_addr = in6addr_loopback;
  auto src = sockaddr_of(source, 0);
  auto dst = sockaddr_of("127.0.6.1", port);
  if (!v6) ::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
  std::string out;
  if (v6 ? ::connect(fd, reinterpret_cast<sockaddr*>(&dst6), sizeof dst6) == 0
         : ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n";
    ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string run_capture(const std::vector<std::string>& argv) {
  std::string cmd;
  for (const auto& a : argv) cmd += "'" + a + "' ";
  std::string out;
  FILE* p = ::popen((cmd + "2>&1").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  ::pclose(p);
  return out;
}

// Whether this machine has IPv6 loopback (a container may have IPv6 off).
bool has_ipv6_loopback() {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

template <class Pred>
std::optional<Steady::time_point> when(std::chrono::milliseconds limit, Pred pred) {
  auto start = Steady::now();
  while (Steady::now() - start < limit) {
    if (pred()) return Steady::now();
    std::this_thread::sleep_for(10ms);
  }
  return std::nullopt;
}

class SnigatedJail : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("snigate-watch-snigated-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    backend.emplace(dir);
    socket = (dir / "control.sock").string();
    ipv6 = has_ipv6_loopback();
    std::ofstream(dir / "snigated.toml") << R"([daemon]
control_socket = ")" << socket << R"("
access_log = ")" << (dir / "edge-access.log").string() << R"("
[bans]
pin_dir = ")" << (dir / "pins").string() << R"("
store = ")" << (dir / "bans.db").string() << R"("
[[listener]]
name = "web"
listen = "127.0.6.1:0"
protocol = "http"
table = "web"
)" << (ipv6 ? R"([[listener]]
name = "web6"
listen = "[::1]:0"
protocol = "http"
table = "web"
)" : "") << R"([table.web]
default = "app"
[backend.app]
servers = ["127.0.6.1:)" << backend->port() << R"("]
proxy_protocol = "v1"
[[jail]]
name = "app-auth"
logpath = ")" << backend->error_log.path().string() << R"("
filter = "nginx-http-auth"
maxretry = 3
bantime = "4s"
ban_prefix_v6 = 64
)" << self_setting() << R"([[jail]]
name = "app-bots"
logpath = ")" << backend->access_log.path().string() << R"("
filter = "nginx-botsearch"
maxretry = 2
bantime = "4s"
)" << self_setting();
    ASSERT_NO_FATAL_FAILURE(start_daemon());
  }
  // Every client here is on loopback, which ignoreself (on by default) never bans.
  virtual std::string self_setting() const { return "ignoreself = false\n"; }
  void TearDown() override {
    stop_daemon();
    backend.reset();
    fs::remove_all(dir);
  }

  void start_daemon() {
    daemon_log = dir / "snigated.log";
    snigated.reset();
    snigated = std::make_unique<itest::Snigated>(dir / "snigated.toml", daemon_log);
    port = snigated->port("web");
    port6 = ipv6 ? snigated->port("web6") : 0;
    ASSERT_NE(slurp(daemon_log).find("jails: 2 running"), std::string::npos) << slurp(daemon_log);
  }
  void stop_daemon() {
    if (snigated) snigated->stop();
    snigated.reset();
  }

  std::uint16_t port_for(const std::string& source) const {
    return source.find(':') != std::string::npos ? port6 : port;
  }
  bool served(const std::string& source) {
    return get_from(source, port_for(source), "/").find("backend") != std::string::npos;
  }
  // One failed request, answered by the backend. The one that reaches maxretry may see its
  // connection ended by the ban it causes (a ban ends live connections), so its reply is
  // not required.
  void fail(const std::string& client, const std::string& path = "/admin", bool last = false) {
    auto reply = get_from(client, port_for(client), path);
    if (last) return;
    ASSERT_NE(reply.find(path == "/admin" ? "denied" : "nothing"), std::string::npos)
        << client << " " << path << ": " << reply << "\n" << slurp(daemon_log);
  }
  // Proof, without a sleep, that the daemon's jails have read every line the backend logged
  // so far: a sentinel client's `maxretry` failures on `path`, logged after them, get it
  // refused (the backend logs in request order, a jail reads its log in order). Then the
  // sentinel is unbanned, so the case sees only its own bans.
  void caught_up(const std::string& sentinel, const std::string& path, int maxretry) {
    for (int i = 1; i < maxretry; ++i) ASSERT_NO_FATAL_FAILURE(fail(sentinel, path));
    fail(sentinel, path, true);
    ASSERT_TRUE(when(5000ms, [&] { return !served(sentinel); }))
        << "the sentinel " << sentinel << " was never banned:\n" << slurp(daemon_log);
    auto out = run_capture({SNIGATECTL_PATH, "--socket", socket, "unban", sentinel});
    ASSERT_TRUE(when(2000ms, [&] { return served(sentinel); })) << "unban " << sentinel << ": " << out;
  }
  // From the backend's write of the line that reached maxretry to the first refused
  // connection; a probe every 10 ms.
  Steady::duration ban_latency(const std::string& client) {
    auto logged = backend->last_failure_logged();
    auto refused = when(5000ms, [&] { return !served(client); });
    EXPECT_TRUE(refused) << client << " never banned:\n" << slurp(daemon_log);
    auto took = refused ? *refused - logged : Steady::duration(5s);
    latencies.push_back(took);
    std::cout << "[ latency  ] " << client << " banned "
              << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
              << " ms after its line was logged\n";
    return took;
  }

  fs::path dir, daemon_log;
  std::optional<Backend> backend;
  std::string socket;
  std::unique_ptr<itest::Snigated> snigated;
  bool ipv6 = false;
  std::uint16_t port = 0, port6 = 0;
  std::vector<Steady::duration> latencies;
};

TEST_F(SnigatedJail, ErrorLogBansTheProxiedClientThroughRenameAndCopytruncateUntilBantime) {
  // A: plain appends. Two failures are not enough; the third bans.
  ASSERT_TRUE(served("127.0.6.2")) << slurp(daemon_log);
  fail("127.0.6.2");
  fail("127.0.6.2");
  ASSERT_NO_FATAL_FAILURE(caught_up("127.0.6.90", "/admin", 3));
  ASSERT_TRUE(served("127.0.6.2"));
  std::time_t third_at = std::time(nullptr);
  fail("127.0.6.2", "/admin", true);
  ban_latency("127.0.6.2");
  EXPECT_TRUE(served("127.0.6.3"));  // only the offender
  // The backend saw the edge, never the client: the log named it from the PROXY header.
  for (const auto& peer : backend->tcp_peers()) EXPECT_NE(peer, "127.0.6.2");

  auto table = run_capture({SNIGATECTL_PATH, "--socket", socket, "bans"});
  EXPECT_NE(table.find("127.0.6.2"), std::string::npos) << table;
  EXPECT_NE(table.find("app-auth"), std::string::npos) << table;
  EXPECT_NE(table.find("[error] 31#31"), std::string::npos) << table;  // the sample's start
  auto list = nlohmann::json::parse(run_capture({SNIGATECTL_PATH, "--socket", socket, "bans", "--json"}),
                                    nullptr, false);
  ASSERT_TRUE(list.is_array()) << list;
  ASSERT_EQ(list.size(), 1u) << list;
  EXPECT_EQ(list[0]["prefix"], "127.0.6.2");
  EXPECT_EQ(list[0]["jail"], "app-auth");
  EXPECT_NE(list[0]["sample"].get<std::string>().find("password mismatch, client: 127.0.6.2"),
            std::string::npos) << list;
  ASSERT_TRUE(list[0]["matched_at"].is_number()) << list;
  EXPECT_LE(std::abs(list[0]["matched_at"].get<long long>() - static_cast<long long>(third_at)), 2)
      << list;

  // B: rename rotation. One failure still goes to the renamed file (nginx has not reopened
  // yet), the next two to the new file.
  fs::rename(backend->error_log.path(), dir / "error.log.1");
  fail("127.0.6.3");
  backend->error_log.reopen();
  fail("127.0.6.3");
  fail("127.0.6.3", "/admin", true);
  ban_latency("127.0.6.3");

  // C: copytruncate. logrotate copies the file and truncates it under the writer.
  fs::copy_file(backend->error_log.path(), dir / "error.log.2");
  fs::resize_file(backend->error_log.path(), 0);
  fail("127.0.6.4");
  fail("127.0.6.4");
  fail("127.0.6.4", "/admin", true);
  ban_latency("127.0.6.4");

  // The 1 s bound, loosely for a loaded 2-core machine: every ban within 2 s, and at least
  // two of the three (the median) within 1 s.
  auto sorted = latencies;
  std::sort(sorted.begin(), sorted.end());
  ASSERT_EQ(sorted.size(), 3u);
  EXPECT_LT(sorted[1], 1s);
  EXPECT_LT(sorted[2], 2s);

  // bantime is 4 s: then every banned client connects again.
  for (const char* client : {"127.0.6.2", "127.0.6.3", "127.0.6.4"})
    EXPECT_TRUE(when(10000ms, [&] { return served(client); }))
        << client << " still refused after bantime:\n" << slurp(daemon_log);
}

TEST_F(SnigatedJail, AccessLogBotProbesBanTheProxiedClient) {
  ASSERT_TRUE(served("127.0.6.5")) << slurp(daemon_log);
  fail("127.0.6.5", "/phpmyadmin/index.php");
  ASSERT_NO_FATAL_FAILURE(caught_up("127.0.6.90", "/phpmyadmin/index.php", 2));
  ASSERT_TRUE(served("127.0.6.5"));
  fail("127.0.6.5", "/phpmyadmin/setup.php", true);
  EXPECT_LT(ban_latency("127.0.6.5"), 2s);
  EXPECT_TRUE(served("127.0.6.6"));
  auto list = nlohmann::json::parse(run_capture({SNIGATECTL_PATH, "--socket", socket, "bans", "--json"}),
                                    nullptr, false);
  ASSERT_TRUE(list.is_array() && list.size() == 1u) << list;
  EXPECT_EQ(list[0]["jail"], "app-bots");
  EXPECT_EQ(list[0]["sample"].get<std::string>().rfind("127.0.6.5 - - [", 0), 0u) << list;
  EXPECT_TRUE(when(10000ms, [&] { return served("127.0.6.5"); })) << slurp(daemon_log);
}

// ban_prefix_v6 = 64: an IPv6 client is banned with its whole /64, and the ban says so.
TEST_F(SnigatedJail, IPv6ClientIsBannedByItsSlash64) {
  if (!ipv6) GTEST_SKIP() << "SKIPPED LOUDLY: this machine has no IPv6 loopback (::1), so no IPv6 client";
  ASSERT_TRUE(served("::1")) << slurp(daemon_log);
  fail("::1");
  fail("::1");
  fail("::1", "/admin", true);
  EXPECT_LT(ban_latency("::1"), 2s);
  EXPECT_TRUE(served("127.0.6.7"));
  auto list = nlohmann::json::parse(run_capture({SNIGATECTL_PATH, "--socket", socket, "bans", "--json"}),
                                    nullptr, false);
  ASSERT_TRUE(list.is_array() && list.size() == 1u) << list;
  EXPECT_EQ(list[0]["prefix"], "::/64");
  EXPECT_EQ(list[0]["jail"], "app-auth");
  EXPECT_NE(list[0]["sample"].get<std::string>().find("client: ::1,"), std::string::npos) << list;
  auto table = run_capture({SNIGATECTL_PATH, "--socket", socket, "bans"});
  EXPECT_NE(table.find("::/64"), std::string::npos) << table;
  EXPECT_TRUE(when(10000ms, [&] { return served("::1"); })) << slurp(daemon_log);
}

// A restart of snigated neither reads a line twice nor skips one, and keeps the failures it
// counted: positions and counts are kept beside the ban store ([bans] store's directory,
// "watch/").
TEST_F(SnigatedJail, RestartNeitherRereadsNorSkipsAndKeepsCounts) {
  fail("127.0.6.8");
  ASSERT_NO_FATAL_FAILURE(caught_up("127.0.6.91", "/admin", 3));  // counted before the stop
  stop_daemon();
  EXPECT_TRUE(fs::exists(dir / "watch" / "app-auth.pos"));
  // Written while the edge is down (a client the backend still served some other way).
  backend->error_log.write(strtime("%Y/%m/%d %H:%M:%S", std::time(nullptr)) +
                           " [error] 31#31: *90 user \"admin\": password mismatch, client: "
                           "127.0.6.8, server: app.test, request: \"GET /admin HTTP/1.1\", host: "
                           "\"app.test\"\n");
  ASSERT_NO_FATAL_FAILURE(start_daemon());
  // Kept count 1 and the line written while down make 2; re-reading the first line would
  // make 3: a ban.
  ASSERT_NO_FATAL_FAILURE(caught_up("127.0.6.90", "/admin", 3));
  EXPECT_TRUE(served("127.0.6.8")) << slurp(daemon_log);
  // The third failure bans: without the kept count (or skipping the line written while
  // down) it would be the second.
  fail("127.0.6.8", "/admin", true);
  EXPECT_LT(ban_latency("127.0.6.8"), 2s);
}

// `snigatectl unban` of a client a jail banned: its next maxretry failures ban it again at
// once, not only after the lifted ban's bantime would have ended.
TEST_F(SnigatedJail, UnbanLetsTheNextFailuresBanAgain) {
  fail("127.0.6.11");
  fail("127.0.6.11");
  fail("127.0.6.11", "/admin", true);
  ban_latency("127.0.6.11");
  auto out = run_capture({SNIGATECTL_PATH, "--socket", socket, "unban", "127.0.6.11"});
  ASSERT_TRUE(when(2000ms, [&] { return served("127.0.6.11"); })) << out << slurp(daemon_log);
  fail("127.0.6.11");
  fail("127.0.6.11");
  fail("127.0.6.11", "/admin", true);
  EXPECT_LT(ban_latency("127.0.6.11"), 2s);
}

// The defaults, as an operator who never heard of ignoreself gets them.
class SnigatedJailDefaults : public SnigatedJail {
 protected:
  std::string self_setting() const override { return ""; }
};

// A log line naming the host itself (here every client is on 127.0.0.0/8; in the report, an
// nginx error line whose Host carried "client: 127.0.0.1") bans nothing, so local clients
// are never cut off by a forged line; the daemon says why.
TEST_F(SnigatedJailDefaults, LinesNamingTheHostItselfBanNothing) {
  fail("127.0.6.12");
  fail("127.0.6.12");
  fail("127.0.6.12");
  EXPECT_TRUE(when(3000ms, [&] {
    return slurp(daemon_log).find("not banning 127.0.6.12") != std::string::npos;
  })) << slurp(daemon_log);
  EXPECT_TRUE(served("127.0.6.12")) << slurp(daemon_log);
  auto list = nlohmann::json::parse(run_capture({SNIGATECTL_PATH, "--socket", socket, "bans", "--json"}),
                                    nullptr, false);
  EXPECT_TRUE(list.is_array() && list.empty()) << list;
}

}  // namespace
