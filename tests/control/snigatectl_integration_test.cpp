// snigated and snigatectl as a user runs them, on 127.0.8.x: a temp config with an http
// listener in front of an echo backend, bans made and lifted with snigatectl (checking its
// output and exit codes), a banned client's live connection ended and its new ones refused
// at accept time, stats, conns, reload, and the remote ban channel over real TCP (good, bad,
// replayed and stale requests, a flooding peer, every request logged, off by default).
// Every port is ephemeral: snigated binds port 0 and the test reads the port from its log.
// Without CAP_BPF the daemon runs with bans at accept time only; as root it pins its maps
// under a per-test directory in /sys/fs/bpf and removes them afterwards.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <regex>
#include <set>
#include <signal.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "control/remote_client.h"
#include "control/remote_protocol.h"
#include "integration/harness.h"


namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using snigate::control::RemoteBanClient;
using Status = snigate::control::RemoteReply::Status;

const std::string kToken = "integration-token-0123456789abcdef";

sockaddr_in addr(const std::string& ip, unsigned short port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

// Echoes every connection's bytes back; counts the connections that reached it.
class EchoBackend {
 public:
  EchoBackend() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    auto a = addr("127.0.8.1", 0);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~EchoBackend() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
    std::lock_guard lock(mu_);
    for (int c : conns_) ::shutdown(c, SHUT_RDWR);
    for (auto& t : echoes_) t.join();
    for (int c : conns_) ::close(c);
  }
  unsigned short port() const { return port_; }
  int accepted() const { return accepted_.load(); }

 private:
  void loop() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      ++accepted_;
      std::lock_guard lock(mu_);
      conns_.push_back(c);
      echoes_.emplace_back([c] {
        char buf[4096];
        for (ssize_t n; (n = ::recv(c, buf, sizeof buf, 0)) > 0;)
          if (::send(c, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) break;
        ::shutdown(c, SHUT_WR);
      });
    }
  }
  int fd_;
  unsigned short port_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
  std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::thread> echoes_;
};

// A client connection from `source` (127.0.8.x) to snigated's http listener.
class Client {
 public:
  Client(const std::string& source, unsigned short port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto from = addr(source, 0);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from);
    auto to = addr("127.0.8.1", port);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
  }
  ~Client() { ::close(fd_); }
  // Sends a request and reads until it comes back (the backend echoes) or `timeout` passes.
  bool round_trip(std::chrono::milliseconds timeout = 3s, const std::string& host = "a.example") {
    const std::string req = "GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
    if (!connected_ || ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
      return false;
    std::string got;
    while (got.size() < req.size()) {
      if (!readable(timeout)) return false;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got == req;
  }
  // True when the daemon ends the connection (EOF or reset) within `timeout`.
  bool ended_within(std::chrono::milliseconds timeout) {
    if (!readable(timeout)) return false;
    char buf[64];
    return ::recv(fd_, buf, sizeof buf, 0) <= 0;
  }

 private:
  bool readable(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
  }
  int fd_;
  bool connected_ = false;
};

// Sends `lines` (each a signed request with its newline) on one TCP connection from
// `source` to the remote ban channel and returns the reply to each ("" when none came).
std::vector<json> remote_exchange(const std::string& source, unsigned short port,
                                  const std::vector<std::string>& lines) {
  std::vector<json> replies;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto from = addr(source, 0);
  auto to = addr("127.0.8.1", port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return replies;
  }
  std::string buffer;
  for (const auto& line : lines) {
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) break;
    std::size_t nl;
    while ((nl = buffer.find('\n')) == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) break;
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      buffer.append(buf, static_cast<std::size_t>(n));
    }
    if (nl == std::string::npos) break;
    replies.push_back(json::parse(buffer.substr(0, nl), nullptr, false));
    buffer.erase(0, nl + 1);
  }
  ::close(fd);
  return replies;
}

std::string signed_ban(const std::string& prefix, std::chrono::system_clock::time_point when,
                       const std::string& nonce = snigate::control::random_nonce()) {
  json body{{"cmd", "ban"}, {"prefix", prefix}, {"duration", 600}, {"jail", "remote-test"}};
  return snigate::control::sign_remote_request(body, kToken, when, nonce);
}

// TCP sockets in LISTEN state that process `pid` holds (its fds matched against
// /proc/net/tcp{,6} by inode).
int listening_tcp_sockets(pid_t pid) {
  std::set<std::string> listening;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::vector<std::string> f;
      for (std::string x; fields >> x;) f.push_back(x);
      if (f.size() > 9 && f[3] == "0A") listening.insert(f[9]);
    }
  }
  int count = 0;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(fd.path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0 &&
        listening.count(target.substr(8, target.size() - 9)))
      ++count;
  }
  return count;
}

struct CtlRun {
  int status = -1;
  std::string output;  // stdout and stderr
};

CtlRun run(const std::string& args) {
  CtlRun r;
  std::string cmd = std::string(SNIGATECTL_PATH) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.output.append(buf, n);
  int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class SnigatectlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sg-ctl-it-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    socket_ = dir_ + "/run/control.sock";
    pin_dir_ = "/sys/fs/bpf/sg-ctl-test-" + std::to_string(::getpid());
    write_config("");
    start_daemon();
  }
  void TearDown() override {
    stop_daemon();
    std::error_code ec;
    std::filesystem::remove_all(pin_dir_, ec);
    if (HasFailure()) {
      std::ifstream log(dir_ + "/snigated.log");
      std::cerr << "--- snigated log ---\n" << log.rdbuf() << "\n";
    }
    std::filesystem::remove_all(dir_);
  }

  // `extra`: more [[listener]]s; `remote`: with the [remote_ban] section (1 request/s per
  // peer, burst 8), else without it, as an operator's config that never mentions it.
  void write_config(const std::string& extra, bool remote = true) {
    std::ofstream out(dir_ + "/snigate.toml");
    out << "[daemon]\nworkers = 1\nrelay = \"copy\"\ncontrol_socket = \"" << socket_
        << "\"\naccess_log = \"" << dir_ << "/access.log\"\n"
        << "[[listener]]\nname = \"edge\"\nlisten = \"127.0.8.1:0\"\nprotocol = \"http\"\ntable = \"t\"\n"
        << extra << "[table.t]\ndefault = \"echo\"\n"
        << "[backend.echo]\nservers = [\"127.0.8.1:" << backend_.port() << "\"]\n"
        << "[bans]\nstore = \"" << dir_ << "/bans.db\"\npin_dir = \"" << pin_dir_
        << "\"\nignore = [\"127.0.8.128/25\"]\n";
    if (remote)
      out << "[remote_ban]\nlisten = \"127.0.8.1:0\"\ntokens = [\"" << kToken
          << "\"]\nrate = 1\nburst = 8\n";
  }

  // The port listener `name` is bound to, as `snigatectl stats` says (a listener a reload
  // added is not in the ready line); 0 when it lists none.
  unsigned short bound_port(const std::string& name) {
    const auto run = ctl("stats --json");
    const auto stats = json::parse(run.output, nullptr, false);
    if (stats.is_discarded() || !stats.contains("bound") || !stats["bound"].contains(name)) {
      ADD_FAILURE() << "no bound address for " << name << " in: " << run.output;
      return 0;
    }
    const std::string address = stats["bound"][name].get<std::string>();
    return static_cast<unsigned short>(std::stoi(address.substr(address.rfind(':') + 1)));
  }

  void start_daemon() {
    daemon_.reset();
    daemon_ = std::make_unique<snigate::itest::Snigated>(dir_ + "/snigate.toml");
    port_ = daemon_->port("edge");
    remote_port_ = daemon_->port_or_zero("remote_ban");
  }

  void stop_daemon() {
    if (daemon_) daemon_->stop(5s);
    daemon_.reset();
  }

  CtlRun ctl(const std::string& args) { return run(args + " --socket " + socket_); }

  std::string log() const {
    std::ifstream in(dir_ + "/snigated.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  EchoBackend backend_;
  std::string dir_, socket_, pin_dir_;
  unsigned short port_ = 0, remote_port_ = 0;
  std::unique_ptr<snigate::itest::Snigated> daemon_;
};

TEST_F(SnigatectlTest, ControlSocketIsPrivate) {
  struct stat st {};
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(SnigatectlTest, BanEndsLiveConnectionRefusesNewOnesAndUnbanRestores) {
  Client banned("127.0.8.2", port_), other("127.0.8.3", port_);
  ASSERT_TRUE(banned.round_trip());
  ASSERT_TRUE(other.round_trip());

  auto ban = ctl("ban 127.0.8.2 --for 1h --reason 'integration test'");
  EXPECT_EQ(ban.status, 0) << ban.output;
  EXPECT_NE(ban.output.find("banned 127.0.8.2 for 1h00m"), std::string::npos) << ban.output;
  EXPECT_NE(ban.output.find("ended 1 live connection"), std::string::npos) << ban.output;
  EXPECT_TRUE(banned.ended_within(2s));
  EXPECT_TRUE(other.round_trip());  // the other client is untouched
  // The ended connection's access-log line says a ban ended it (not a bare "aborted").
  const std::regex ended_by_ban(R"(client=127\.0\.8\.2\b.* end=banned)");
  std::string access;
  for (auto until = std::chrono::steady_clock::now() + 5s;
       std::chrono::steady_clock::now() < until && !std::regex_search(access, ended_by_ban);
       std::this_thread::sleep_for(50ms)) {
    std::ifstream in(dir_ + "/access.log");
    access.assign(std::istreambuf_iterator<char>(in), {});
  }
  EXPECT_TRUE(std::regex_search(access, ended_by_ban)) << access;

  int reached = backend_.accepted();
  Client again("127.0.8.2", port_);
  EXPECT_FALSE(again.round_trip(2s));
  EXPECT_EQ(backend_.accepted(), reached);  // refused at accept, never reached the backend
  Client third("127.0.8.3", port_);
  EXPECT_TRUE(third.round_trip());

  auto list = ctl("bans");
  EXPECT_EQ(list.status, 0);
  EXPECT_NE(list.output.find("PREFIX"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("127.0.8.2"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("integration test"), std::string::npos) << list.output;
  auto listed = ctl("bans --json");
  ASSERT_EQ(listed.status, 0);
  auto bans = json::parse(listed.output);
  ASSERT_EQ(bans.size(), 1u) << listed.output;
  EXPECT_EQ(bans[0]["prefix"], "127.0.8.2");
  EXPECT_EQ(bans[0]["source"], "ctl");
  EXPECT_FALSE(bans[0]["expires"].is_null());
  EXPECT_GE(bans[0]["drops"].get<int>(), 1);  // the refused accept counts as a drop

  auto unban = ctl("unban 127.0.8.2");
  EXPECT_EQ(unban.status, 0) << unban.output;
  EXPECT_EQ(unban.output, "unbanned 127.0.8.2\n");
  Client back("127.0.8.2", port_);
  EXPECT_TRUE(back.round_trip());
  auto twice = ctl("unban 127.0.8.2");
  EXPECT_EQ(twice.status, 1);
  EXPECT_NE(twice.output.find("no ban on 127.0.8.2"), std::string::npos) << twice.output;
  EXPECT_EQ(ctl("bans").output, "no bans\n");
}

// With snigated's own config file snigatectl needs no --socket; a broken file is named with
// its line; --socket still wins.
TEST_F(SnigatectlTest, SocketPathIsTakenFromTheConfigFile) {
  const std::string config = dir_ + "/snigate.toml";
  auto stats = run("stats --json -c " + config);
  EXPECT_EQ(stats.status, 0) << stats.output;
  EXPECT_NO_THROW(json::parse(stats.output)) << stats.output;
  auto ban = run("-c " + config + " ban 127.0.8.12");
  EXPECT_EQ(ban.status, 0) << ban.output;
  EXPECT_NE(ctl("bans").output.find("127.0.8.12"), std::string::npos);

  auto elsewhere = run("stats -c " + config + " --socket " + dir_ + "/nope.sock");
  EXPECT_EQ(elsewhere.status, 1);
  EXPECT_NE(elsewhere.output.find("nope.sock"), std::string::npos) << elsewhere.output;

  std::ofstream(dir_ + "/broken.toml") << "[daemon]\nworkers = \"many\"\n";
  auto broken = run("stats -c " + dir_ + "/broken.toml");
  EXPECT_EQ(broken.status, 2);
  EXPECT_NE(broken.output.find("broken.toml:2"), std::string::npos) << broken.output;
  EXPECT_NE(broken.output.find("--socket"), std::string::npos) << broken.output;
}

TEST_F(SnigatectlTest, CidrBanCoversItsPrefix) {
  auto ban = ctl("ban 127.0.8.0/30");
  EXPECT_EQ(ban.status, 0) << ban.output;
  EXPECT_NE(ban.output.find("banned 127.0.8.0/30 permanently"), std::string::npos) << ban.output;
  Client inside("127.0.8.3", port_), outside("127.0.8.4", port_);
  EXPECT_FALSE(inside.round_trip(2s));
  EXPECT_TRUE(outside.round_trip());

  // IPv6 prefixes the same way: host bits set is an error naming the prefix meant.
  auto typo = ctl("ban 2001:db8:8::1/48");
  EXPECT_EQ(typo.status, 2);
  EXPECT_NE(typo.output.find("did you mean 2001:db8:8::/48"), std::string::npos) << typo.output;
  auto v6 = ctl("ban 2001:db8:8::/48 --for 2h --reason scanner");
  EXPECT_EQ(v6.status, 0) << v6.output;
  EXPECT_NE(v6.output.find("banned 2001:db8:8::/48 for 2h00m"), std::string::npos) << v6.output;
  auto bans = json::parse(ctl("bans --json").output);
  ASSERT_EQ(bans.size(), 2u) << bans;
  std::set<std::string> listed{bans[0]["prefix"], bans[1]["prefix"]};
  EXPECT_EQ(listed, (std::set<std::string>{"127.0.8.0/30", "2001:db8:8::/48"}));
  EXPECT_EQ(ctl("unban 2001:db8:8::/48").status, 0);
}

TEST_F(SnigatectlTest, BadInputAndIgnoredNetworksGetClearErrors) {
  auto typo = ctl("ban 127.0.8.2/24");
  EXPECT_EQ(typo.status, 2);
  EXPECT_NE(typo.output.find("did you mean 127.0.8.0/24"), std::string::npos) << typo.output;
  auto junk = ctl("ban 127.0.8.300");
  EXPECT_EQ(junk.status, 2);
  EXPECT_NE(junk.output.find("not an IPv4 or IPv6 address"), std::string::npos) << junk.output;
  auto duration = ctl("ban 127.0.8.2 --for 10x");
  EXPECT_EQ(duration.status, 2);
  EXPECT_NE(duration.output.find("--for"), std::string::npos) << duration.output;

  auto ignored = ctl("ban 127.0.8.200");
  EXPECT_EQ(ignored.status, 1);
  EXPECT_NE(ignored.output.find("--force"), std::string::npos) << ignored.output;
  EXPECT_EQ(ctl("bans").output, "no bans\n");
  auto forced = ctl("ban 127.0.8.200 --force");
  EXPECT_EQ(forced.status, 0) << forced.output;

  auto nowhere = run("stats --socket " + dir_ + "/nope.sock");
  EXPECT_EQ(nowhere.status, 1);
  EXPECT_NE(nowhere.output.find("cannot reach snigated"), std::string::npos) << nowhere.output;
}

TEST_F(SnigatectlTest, StatsAndConnsShowLiveTraffic) {
  Client live("127.0.8.4", port_);
  ASSERT_TRUE(live.round_trip());

  auto conns = ctl("conns");
  EXPECT_EQ(conns.status, 0);
  EXPECT_NE(conns.output.find("CLIENT"), std::string::npos) << conns.output;
  EXPECT_NE(conns.output.find("127.0.8.4"), std::string::npos) << conns.output;
  auto conns_json = json::parse(ctl("conns --json").output);
  ASSERT_EQ(conns_json.size(), 1u);
  EXPECT_EQ(conns_json[0]["client"], "127.0.8.4");
  EXPECT_EQ(conns_json[0]["backend"], "echo");

  auto stats = ctl("stats");
  EXPECT_EQ(stats.status, 0);
  EXPECT_NE(stats.output.find("connections.accepted"), std::string::npos) << stats.output;
  auto stats_json = json::parse(ctl("stats --json").output);
  EXPECT_GE(stats_json["connections"]["accepted"].get<int>(), 1);
  EXPECT_EQ(stats_json["connections"]["active"].get<int>(), 1);
  EXPECT_EQ(stats_json["bans"]["active"].get<int>(), 0);

  // top: one look after 0.1 s (not a terminal: no screen clearing), the live connection and
  // its backend listed.
  auto top = ctl("top --count 1 --interval 0.1");
  EXPECT_EQ(top.status, 0) << top.output;
  EXPECT_NE(top.output.find("1 live"), std::string::npos) << top.output;
  EXPECT_NE(top.output.find("127.0.8.4"), std::string::npos) << top.output;
  EXPECT_NE(top.output.find("\necho "), std::string::npos) << top.output;
  EXPECT_EQ(top.output.find("\033["), std::string::npos) << top.output;
}

// A route regex that gives up at the match limit still routes (to the default) and is counted
// where the operator looks: snigatectl stats.
TEST_F(SnigatectlTest, RegexLimitHitsAreCountedInStats) {
  stop_daemon();
  write_config("[[listener]]\nname = \"evil\"\nlisten = \"127.0.8.1:0\"\nprotocol = \"http\"\n"
               "table = \"evil\"\n[table.evil]\n\"~^(a+)+$\" = \"echo\"\ndefault = \"echo\"\n");
  start_daemon();
  const unsigned short evil = daemon_->port("evil");
  ASSERT_NE(evil, 0);
  Client crafted("127.0.8.5", evil);
  EXPECT_TRUE(crafted.round_trip(3s, std::string(28, 'a') + "b"));  // served by the default
  auto stats = json::parse(ctl("stats --json").output);
  EXPECT_EQ(stats["routing"]["regex_limit_hits"].get<int>(), 1) << stats;
  EXPECT_NE(log().find("gave up on a name of 29 bytes at the match limit"), std::string::npos);
}

TEST_F(SnigatectlTest, ReloadReportsFileLineAndAppliesAGoodConfig) {
  std::ofstream(dir_ + "/snigate.toml", std::ios::app) << "[daemon2]\n";
  auto bad = ctl("reload");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.output.find("snigate.toml:"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("daemon2"), std::string::npos) << bad.output;

  write_config("[[listener]]\nname = \"second\"\nlisten = \"127.0.8.1:0\"\nprotocol = \"http\"\n"
               "table = \"t\"\n");
  auto good = ctl("reload");
  EXPECT_EQ(good.status, 0) << good.output;
  EXPECT_EQ(good.output, "configuration reloaded\n");
  Client via_new("127.0.8.5", bound_port("second"));
  EXPECT_TRUE(via_new.round_trip());
  Client via_old("127.0.8.5", port_);  // the kept listener still serves
  EXPECT_TRUE(via_old.round_trip());
}

TEST_F(SnigatectlTest, RemoteChannelAcceptsValidTokenAndRefusesBadOne) {
  ASSERT_NE(remote_port_, 0);
  std::string edge = "127.0.8.1:" + std::to_string(remote_port_);
  snigate::bans::BanRequest request;
  request.prefix = *snigate::net::Prefix::parse("127.0.8.6");
  request.duration = 10min;
  request.jail = "nginx-http-auth";
  request.matched_at = std::chrono::system_clock::time_point(std::chrono::seconds(1795428000));
  request.sample = "127.0.8.6 - - [23/Nov/2026:10:00:00 +0000] \"GET /admin HTTP/1.1\" 401";
  Client live("127.0.8.6", port_);
  ASSERT_TRUE(live.round_trip());

  auto forged = RemoteBanClient(edge, "wrong-token-0123456789abcdef").send(request);
  EXPECT_EQ(forged.status, Status::Refused);
  EXPECT_NE(forged.message.find("bad token"), std::string::npos) << forged.message;
  EXPECT_EQ(ctl("bans").output, "no bans\n");
  EXPECT_TRUE(live.round_trip());

  auto accepted = RemoteBanClient(edge, kToken).send(request);
  ASSERT_EQ(accepted.status, Status::Ok) << accepted.message;
  EXPECT_TRUE(live.ended_within(2s));  // a remote ban ends the live connection too
  auto bans = json::parse(ctl("bans --json").output);
  ASSERT_EQ(bans.size(), 1u);
  EXPECT_EQ(bans[0]["prefix"], "127.0.8.6");
  EXPECT_EQ(bans[0]["jail"], "nginx-http-auth");
  EXPECT_EQ(bans[0]["matched_at"], 1795428000);
  EXPECT_EQ(bans[0]["sample"], request.sample);
  EXPECT_EQ(bans[0]["source"].get<std::string>().rfind("remote:127.", 0), 0u) << bans[0];
  // The table an operator reads names the jail, when the line matched and the line itself.
  auto table = ctl("bans").output;
  for (const char* want : {"nginx-http-auth", "2026-11-23 10:00:00 UTC", "[23/Nov/2026:10:00:00 +0000] \"GET /admin", "remote:127."})
    EXPECT_NE(table.find(want), std::string::npos) << want << "\n" << table;
  Client refused("127.0.8.6", port_);
  EXPECT_FALSE(refused.round_trip(2s));

  auto lifted = RemoteBanClient(edge, kToken).unban(request.prefix);
  ASSERT_EQ(lifted.status, Status::Ok) << lifted.message;
  EXPECT_EQ(ctl("bans").output, "no bans\n");
  Client back("127.0.8.6", port_);
  EXPECT_TRUE(back.round_trip());

  auto text = log();
  EXPECT_NE(text.find("refused: bad token"), std::string::npos) << text;
  EXPECT_NE(text.find("accepted ban 127.0.8.6"), std::string::npos) << text;
  EXPECT_NE(text.find("accepted unban 127.0.8.6"), std::string::npos) << text;
  // The newest accepted timestamp is kept beside the ban store for the next start.
  std::int64_t kept = 0;
  std::ifstream(dir_ + "/remote-replay") >> kept;
  EXPECT_GE(kept, std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count() - 60);
}

TEST_F(SnigatectlTest, RemoteChannelRefusesReplayedAndStaleRequests) {
  ASSERT_NE(remote_port_, 0);
  const auto now = std::chrono::system_clock::now();
  const std::string first = signed_ban("127.0.8.7", now);
  auto replies = remote_exchange("127.0.8.21", remote_port_, {first, first});
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_TRUE(replies[0].value("ok", false)) << replies[0];
  EXPECT_FALSE(replies[1].value("ok", true)) << replies[1];
  EXPECT_NE(replies[1].value("error", "").find("replayed"), std::string::npos) << replies[1];
  // The same bytes on a new connection are still a replay.
  replies = remote_exchange("127.0.8.21", remote_port_, {first});
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_NE(replies[0].value("error", "").find("replayed"), std::string::npos) << replies[0];

  // Validly signed, but from ten minutes ago (or ahead): refused, nothing banned.
  replies = remote_exchange("127.0.8.21", remote_port_,
                            {signed_ban("127.0.8.8", now - 10min), signed_ban("127.0.8.9", now + 10min)});
  ASSERT_EQ(replies.size(), 2u);
  for (const auto& r : replies) {
    EXPECT_FALSE(r.value("ok", true)) << r;
    EXPECT_NE(r.value("error", "").find("timestamp"), std::string::npos) << r;
  }
  auto bans = json::parse(ctl("bans --json").output);
  ASSERT_EQ(bans.size(), 1u) << bans;
  EXPECT_EQ(bans[0]["prefix"], "127.0.8.7");

  // Every request is in the log with its peer: 1 accepted, 2 replays, 2 stale.
  auto text = log();
  std::size_t lines = 0;
  for (std::size_t at = 0; (at = text.find("remote ban: 127.0.8.21:", at)) != std::string::npos; ++at) ++lines;
  EXPECT_EQ(lines, 5u) << text;
  EXPECT_NE(text.find("refused: replayed request"), std::string::npos) << text;
  EXPECT_NE(text.find("refused: timestamp"), std::string::npos) << text;
}

TEST_F(SnigatectlTest, RemoteChannelRateLimitsAFloodingPeerOnly) {
  ASSERT_NE(remote_port_, 0);
  // [remote_ban] rate = 1, burst = 8: of 20 requests sent back to back, at most the burst plus
  // what refilled while they were sent get through; the rest are refused and the peer is cut.
  const int sent = 20;
  int ok = 0, limited = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < sent; ++i) {
    auto replies = remote_exchange("127.0.8.22", remote_port_,
                                   {signed_ban("127.0.8." + std::to_string(30 + i), std::chrono::system_clock::now())});
    ASSERT_EQ(replies.size(), 1u) << "request " << i;
    if (replies[0].value("ok", false)) ++ok;
    else if (replies[0].value("error", "").find("rate limited") != std::string::npos) ++limited;
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(ok, 8);
  EXPECT_LE(ok, 8 + static_cast<int>(elapsed) + 1) << "elapsed " << elapsed << " s";
  EXPECT_EQ(ok + limited, sent);
  EXPECT_GE(limited, 1);
  EXPECT_EQ(json::parse(ctl("bans --json").output).size(), static_cast<std::size_t>(ok));

  // Another peer has its own bucket.
  auto other = remote_exchange("127.0.8.23", remote_port_, {signed_ban("127.0.8.50", std::chrono::system_clock::now())});
  ASSERT_EQ(other.size(), 1u);
  EXPECT_TRUE(other[0].value("ok", false)) << other[0];

  auto text = log();
  std::size_t lines = 0;
  for (std::size_t at = 0; (at = text.find("remote ban: 127.0.8.22:", at)) != std::string::npos; ++at) ++lines;
  EXPECT_EQ(lines, static_cast<std::size_t>(sent)) << text;
  EXPECT_NE(text.find("refused: rate limited (1/s, burst 8)"), std::string::npos) << text;
}

// Without a [remote_ban] section snigated opens no TCP port but its listener's; with one
// (the fixture's config) it holds both.
TEST_F(SnigatectlTest, RemoteChannelIsOffByDefault) {
  EXPECT_EQ(listening_tcp_sockets(daemon_->process().pid()), 2);
  stop_daemon();
  write_config("", /*remote=*/false);
  start_daemon();
  EXPECT_EQ(remote_port_, 0);
  EXPECT_EQ(listening_tcp_sockets(daemon_->process().pid()), 1);
  EXPECT_NE(log().find("remote ban: off"), std::string::npos) << log();
  Client still("127.0.8.2", port_);
  EXPECT_TRUE(still.round_trip());
}

}  // namespace
