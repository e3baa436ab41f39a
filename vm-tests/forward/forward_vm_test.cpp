// The forward modes across real links: snigated (relay = "sockmap") in the edge namespace, curl
// and raw clients in the client namespace, and in the backend namespace openssl s_server on
// 10.7.2.2:443 and [fd00:7:2::2]:443, a TCP echo server and dnsmasq on 10.7.2.2:53:
//   allowed.test  A 10.7.2.2, AAAA fd00:7:2::2   allowed6.test  AAAA fd00:7:2::2
//   echo.test     A 10.7.2.2                     other.test     A 10.7.2.2 (not on any list)
//   own.test      A 10.7.2.1 (the edge's own)    loop.test      A 127.0.0.1
//   link.test     A 169.254.7.7                  private.test   A 10.7.1.1 (the client)
//   missing.test  NXDOMAIN                       slow.test      forwarded to a silent server
//   late.test     A 10.7.2.9 (made the edge's own while it runs)
//   loop53.test   A 127.0.0.53 (a local resolver's address)
// Every destination name is on the allow-lists except other.test; of the addresses only
// 10.7.2.2 and fd00:7:2::2 are listed, so the address policy must refuse the rest (all inside
// ranges). Every child runs under setpriv's parent-death signal, so nothing outlives the test.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <regex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "integration/harness.h"
#include "netns.h"

namespace snigate::vmtest {
namespace {

using namespace std::chrono_literals;
using itest::Process;
using itest::RunResult;
using json = nlohmann::json;

// `argv` started inside namespace `ns` (Process ends it when this test process dies).
std::unique_ptr<Process> spawn_in(const std::string& ns, std::vector<std::string> argv,
                                  const std::filesystem::path& log) {
  std::unique_ptr<Process> p;
  in_netns(ns, [&] { p = std::make_unique<Process>(argv, log); });
  return p;
}

RunResult run_in(const std::string& ns, const std::vector<std::string>& argv,
                 std::chrono::milliseconds timeout = 20s) {
  RunResult r;
  in_netns(ns, [&] { r = itest::run(argv, {}, timeout); });
  return r;
}

// A UDP socket that reads DNS queries and never answers.
class SilentUdp {
 public:
  SilentUdp(const std::string& ns, const std::string& ip, std::uint16_t port) {
    in_netns(ns, [&] { fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); });
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      throw std::runtime_error("silent dns: cannot bind " + ip);
  }
  ~SilentUdp() { ::close(fd_); }

 private:
  int fd_ = -1;
};

constexpr char kNames[] =
    R"("allowed.test", "allowed6.test", "echo.test", "own.test", "loop.test", "link.test",
       "private.test", "missing.test", "slow.test", "10.7.2.2/32", "fd00:7:2::2/128")";

class ForwardVm : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = netns_unavailable(); !why.empty())
      GTEST_SKIP() << "FORWARD VM-TESTS SKIPPED: " << why;
    net_.emplace("sg-fwd", 7);
    const std::string backend = net_->backend();
    itest::Cert cert = itest::make_cert(dir_, "allowed.test");
    for (const std::string at : {"10.7.2.2:443", "[fd00:7:2::2]:443"}) {
      auto p = spawn_in(backend,
                        {"openssl", "s_server", "-accept", at, "-cert", cert.cert.string(), "-key",
                         cert.key.string(), "-www"},
                        dir_ / ("s_server." + std::to_string(servers_.size()) + ".log"));
      ASSERT_TRUE(p->wait_for(std::regex("ACCEPT"))) << p->log();
      servers_.push_back(std::move(p));
    }
    in_netns(backend, [&] {
      echo_.emplace("10.7.2.2", [](int fd) {
        char buf[65536];
        for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
          if (!itest::send_all(fd, buf, static_cast<std::size_t>(n))) return;
        ::shutdown(fd, SHUT_WR);
      });
    });
    silent_.emplace(backend, "10.7.2.2", 5353);
    dns_ = spawn_in(
        backend,
        {"dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
         "--listen-address=10.7.2.2", "--bind-interfaces", "--port=53", "--pid-file=",
         "--user=root", "--log-queries", "--log-facility=-", "--local=/test/", "--local-ttl=60",
         "--host-record=allowed.test,10.7.2.2,fd00:7:2::2", "--host-record=allowed6.test,fd00:7:2::2",
         "--host-record=echo.test,10.7.2.2", "--host-record=other.test,10.7.2.2",
         "--host-record=own.test,10.7.2.1", "--host-record=loop.test,127.0.0.1",
         "--host-record=link.test,169.254.7.7", "--host-record=private.test,10.7.1.1",
         "--host-record=late.test,10.7.2.9", "--host-record=loop53.test,127.0.0.53",
         "--server=/slow.test/10.7.2.2#5353"},
        dir_ / "dnsmasq.log");
    ASSERT_TRUE(dns_->wait_for(std::regex("started, version"))) << dns_->log();

    socket_ = (dir_ / "control.sock").string();
    access_ = dir_ / "access.log";
    itest::write_file(dir_ / "snigated.toml", fmt::format(R"([daemon]
workers = 1
relay = "sockmap"
# These exchanges are short: hand each to the kernel at once, not after 64 KiB by copy.
sockmap_handoff_after = 0
control_socket = "{0}"
access_log = "{1}"
[resolver]
servers = ["10.7.2.2:53"]
timeout = "1s"
[[listener]]
name = "proxy"
listen = "10.7.1.2:3128"
protocol = "connect"
allow = [{2}]
[[listener]]
name = "proxy6"
listen = "[fd00:7:1::2]:3128"
protocol = "connect"
allow = [{2}]
[[listener]]
name = "proxy_auth"
listen = "10.7.1.2:3129"
protocol = "connect"
allow = ["allowed.test", "10.7.2.2/32"]
auth = "token:s3cret-token"
[[listener]]
name = "proxy_private"
listen = "10.7.1.2:3130"
protocol = "connect"
allow = ["late.test", "loop53.test"]
allow_private = true
[[listener]]
name = "sni"
listen = "10.7.1.2:443"
table = "fwd"
[table.fwd]
default = "out"
[backend.out]
forward = 443
allow = [{2}]
[bans]
enabled = false
)",
                                                          socket_, access_.string(), kNames));
    in_netns(net_->edge(), [&] {
      daemon_ = std::make_unique<itest::Snigated>(dir_ / "snigated.toml");
    });
  }

  void TearDown() override {
    if (daemon_) daemon_->stop(10s);
    daemon_.reset();
    dns_.reset();
    servers_.clear();
    echo_.reset();
    silent_.reset();
    net_.reset();
  }

  // curl in the client namespace; bounded so a hang fails the test instead of stalling it.
  RunResult curl(std::vector<std::string> args) {
    args.insert(args.begin(), {"curl", "-sS", "-k", "--max-time", "15"});
    return run_in(net_->client(), args);
  }
  RunResult via_proxy(const std::string& url, std::vector<std::string> extra = {},
                      const std::string& proxy = "http://10.7.1.2:3128") {
    std::vector<std::string> args{"--proxy", proxy, url};
    args.insert(args.end(), extra.begin(), extra.end());
    return curl(args);
  }
  RunResult via_sni(const std::string& name) {
    return curl({"--resolve", name + ":443:10.7.1.2", "https://" + name + "/"});
  }

  std::string access_log() const { return itest::read_file(access_); }
  // First access-log line matching `pattern` within 10 s, or empty.
  std::string wait_access(const std::string& pattern) const {
    const std::regex re(pattern);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      std::istringstream lines(access_log());
      for (std::string line; std::getline(lines, line);)
        if (std::regex_search(line, re)) return line;
      if (std::chrono::steady_clock::now() >= deadline) return {};
      std::this_thread::sleep_for(20ms);
    }
  }

  RunResult ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {SNIGATECTL_PATH, "--socket", socket_});
    return itest::run(args, {}, 10s);
  }

  itest::TempDir dir_;
  std::optional<Topology> net_;
  std::vector<std::unique_ptr<Process>> servers_;
  std::optional<itest::RawServer> echo_;
  std::optional<SilentUdp> silent_;
  std::unique_ptr<Process> dns_;
  std::unique_ptr<itest::Snigated> daemon_;
  std::string socket_;
  std::filesystem::path access_;
};

TEST_F(ForwardVm, AllowedNamesPassThroughConnectAndSniForwarding) {
  auto v4 = via_proxy("https://allowed.test/");
  EXPECT_EQ(v4.exit_code, 0) << v4.output;
  EXPECT_NE(v4.output.find("s_server"), std::string::npos) << v4.output;
  auto v6 = via_proxy("https://allowed6.test/", {}, "http://[fd00:7:1::2]:3128");
  EXPECT_EQ(v6.exit_code, 0) << v6.output;
  EXPECT_NE(v6.output.find("s_server"), std::string::npos) << v6.output;
  auto sni = via_sni("allowed.test");
  EXPECT_EQ(sni.exit_code, 0) << sni.output;
  EXPECT_NE(sni.output.find("s_server"), std::string::npos) << sni.output;

  EXPECT_NE(wait_access(R"(listener=proxy name=allowed\.test .*upstream=10\.7\.2\.2:443 .*)"
                        R"(relay=sockmap end=clean requested=allowed\.test:443 )"
                        R"(resolved=10\.7\.2\.2,fd00:7:2::2 verdict=allowed)"),
            "")
      << access_log();
  EXPECT_NE(wait_access(R"(listener=proxy6 name=allowed6\.test .*upstream=\[fd00:7:2::2\]:443 .*)"
                        R"(end=clean requested=allowed6\.test:443 resolved=fd00:7:2::2 verdict=allowed)"),
            "")
      << access_log();
  EXPECT_NE(wait_access(R"(listener=sni name=allowed\.test .*backend=out upstream=10\.7\.2\.2:443 )"
                        R"(.*relay=sockmap end=clean requested=allowed\.test:443 )"
                        R"(resolved=10\.7\.2\.2,fd00:7:2::2 verdict=allowed)"),
            "")
      << access_log();
}

struct Refusal {
  std::string name;
  int status;           // what a CONNECT client gets
  std::string verdict;  // what the access log says, for CONNECT and SNI alike
  std::string detail;   // why, as the log words it (regex)
};

const std::vector<Refusal> kRefusals = {
    {"other.test", 403, "denied-name", R"(name\\x20not\\x20on\\x20the\\x20allow-list)"},
    {"own.test", 403, "denied-address", R"(10\.7\.2\.1:\\x20own\\x20address)"},
    {"loop.test", 403, "denied-address", R"(127\.0\.0\.1:\\x20loopback)"},
    {"link.test", 403, "denied-address", R"(169\.254\.7\.7:\\x20link-local)"},
    {"private.test", 403, "denied-address", R"(10\.7\.1\.1:\\x20private)"},
    {"missing.test", 502, "dns-not-found", ""},
    {"slow.test", 504, "dns-timeout", ""},
};

TEST_F(ForwardVm, RefusedDestinationsGetTheRightErrorAndVerdict) {
  for (const auto& r : kRefusals) {
    SCOPED_TRACE(r.name);
    const auto started = std::chrono::steady_clock::now();
    auto c = via_proxy("https://" + r.name + "/");
    EXPECT_NE(c.exit_code, 0) << c.output;
    EXPECT_NE(c.output.find(fmt::format("CONNECT tunnel failed, response {}", r.status)),
              std::string::npos)
        << c.output;
    auto s = via_sni(r.name);
    EXPECT_NE(s.exit_code, 0) << s.output;
    // Both refusals, the DNS timeout included, well inside curl's own 15 s limit.
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s) << "a refusal was not prompt";
    for (const std::string listener : {"proxy", "sni"})
      EXPECT_NE(wait_access(fmt::format(R"(listener={} name={} .*requested={}:443 .*verdict={}(.*{})?)",
                                        listener, std::regex_replace(r.name, std::regex(R"(\.)"), R"(\.)"),
                                        std::regex_replace(r.name, std::regex(R"(\.)"), R"(\.)"),
                                        r.verdict, r.detail)),
                "")
          << listener << "\n" << access_log();
  }
  // Names off the list are refused before DNS: the gateway never looks them up.
  EXPECT_EQ(dns_->log().find("other.test"), std::string::npos) << dns_->log();
}

// With allow_private, the host itself stays closed: all of 127.0.0.0/8 (not only 127.0.0.1),
// and an address the edge gained after start (`ip addr add`, as DHCP or SLAAC would), since
// "own" is the kernel's answer at connect time.
TEST_F(ForwardVm, AllowPrivateNeverOpensTheHostItselfEvenAnAddressAddedAfterStart) {
  const std::string proxy = "http://10.7.1.2:3130";
  auto loop = via_proxy("https://loop53.test/", {}, proxy);
  EXPECT_NE(loop.output.find("CONNECT tunnel failed, response 403"), std::string::npos) << loop.output;
  EXPECT_NE(wait_access(R"(listener=proxy_private name=loop53\.test .*verdict=denied-address.*127\.0\.0\.53:\\x20loopback)"),
            "")
      << access_log();

  auto added = run_in(net_->edge(), {"ip", "addr", "add", "10.7.2.9/32", "dev", "lo"});
  ASSERT_EQ(added.exit_code, 0) << added.output;
  auto late = via_proxy("https://late.test/", {}, proxy);
  EXPECT_NE(late.output.find("CONNECT tunnel failed, response 403"), std::string::npos) << late.output;
  EXPECT_NE(wait_access(R"(listener=proxy_private name=late\.test .*verdict=denied-address.*10\.7\.2\.9:\\x20own\\x20address)"),
            "")
      << access_log();
}

TEST_F(ForwardVm, JunkAuthAndTheWrongListenerGetClearAnswers) {
  std::string junk;
  in_netns(net_->client(), [&] {
    int fd = itest::connect_to("10.7.1.2", 3128);
    itest::send_all(fd, "HELLO there\r\n\r\n");
    junk = itest::recv_until_eof(fd);
    ::close(fd);
  });
  EXPECT_EQ(junk.rfind("HTTP/1.1 400", 0), 0u) << junk;
  auto get = curl({"http://10.7.1.2:3128/"});
  EXPECT_NE(get.output.find("use CONNECT"), std::string::npos) << get.output;

  const std::string auth_proxy = "http://10.7.1.2:3129";
  auto none = via_proxy("https://allowed.test/", {}, auth_proxy);
  EXPECT_NE(none.output.find("response 407"), std::string::npos) << none.output;
  auto wrong = via_proxy("https://allowed.test/",
                         {"--proxy-header", "Proxy-Authorization: Bearer nope"}, auth_proxy);
  EXPECT_NE(wrong.output.find("response 407"), std::string::npos) << wrong.output;
  auto right = via_proxy("https://allowed.test/",
                         {"--proxy-header", "Proxy-Authorization: Bearer s3cret-token"}, auth_proxy);
  EXPECT_EQ(right.exit_code, 0) << right.output;
  EXPECT_NE(right.output.find("s_server"), std::string::npos) << right.output;
  EXPECT_NE(wait_access(R"(listener=proxy_auth name=allowed\.test .*verdict=auth-required detail=wrong\\x20credentials)"),
            "")
      << access_log();

  // A client told to use the SNI listener as its HTTP proxy: an explanation in the log, and the
  // connection closed at once rather than left waiting for a ClientHello.
  const auto started = std::chrono::steady_clock::now();
  auto wrong_listener = via_proxy("https://allowed.test/", {}, "http://10.7.1.2:443");
  EXPECT_NE(wrong_listener.exit_code, 0) << wrong_listener.output;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s) << "hung instead of closing";
  EXPECT_NE(wait_access(R"(listener=sni .*end=parse_error detail=client\\x20sent\\x20an\\x20HTTP\\x20CONNECT\\x20to\\x20a\\x20TLS\\x20listener)"),
            "")
      << access_log();
}

// How many sockets the kernel relay of process `pid` holds now (entries of its sg_relay_index
// map), or nullopt when there is no such map. The map is found through the process's own file
// descriptors (fdinfo's map_id), since other daemons may run relays of their own.
std::optional<std::size_t> sockmap_sockets(pid_t pid) {
  std::set<long> ids;
  const std::regex map_id(R"(map_id:\s*(\d+))");
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(fmt::format("/proc/{}/fdinfo", pid), ec)) {
    std::string info = itest::read_file(e.path());
    std::smatch m;
    if (std::regex_search(info, m, map_id)) ids.insert(std::stol(m[1]));
  }
  auto maps = json::parse(itest::run({"bpftool", "-j", "map", "show"}, {}, 10s).output, nullptr, false);
  if (!maps.is_array()) return std::nullopt;
  for (const auto& m : maps) {
    if (m.value("name", "") != "sg_relay_index" || !ids.count(m.value("id", -1L))) continue;
    auto dump = itest::run({"bpftool", "-j", "map", "dump", "id", std::to_string(m.value("id", 0L))},
                           {}, 10s);
    auto entries = json::parse(dump.output, nullptr, false);
    if (dump.exit_code != 0 || !entries.is_array()) return std::nullopt;
    return entries.size();
  }
  return std::nullopt;
}

TEST_F(ForwardVm, ConnectTunnelRunsOnTheSockmapRelayAndShowsInConns) {
  const std::uint16_t port = echo_->port();
  const std::string target = "echo.test:" + std::to_string(port);
  int fd = -1;
  in_netns(net_->client(), [&] { fd = itest::connect_to("10.7.1.2", 3128); });
  ASSERT_GE(fd, 0);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  ASSERT_TRUE(itest::send_all(fd, "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n"));
  std::string head;
  for (char c; head.find("\r\n\r\n") == std::string::npos && ::recv(fd, &c, 1, 0) == 1;) head += c;
  ASSERT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  ASSERT_TRUE(itest::send_all(fd, "ping"));
  char pong[4];
  ASSERT_EQ(::recv(fd, pong, 4, MSG_WAITALL), 4);

  // Live: what snigatectl shows for the tunnel while it relays.
  auto listed = ctl({"conns", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  auto conns = json::parse(listed.output, nullptr, false);
  ASSERT_TRUE(conns.is_array()) << listed.output;
  ASSERT_EQ(conns.size(), 1u) << listed.output;
  const auto& c = conns[0];
  EXPECT_EQ(c.value("listener", ""), "proxy");
  EXPECT_EQ(c.value("server_name", ""), "echo.test");
  EXPECT_EQ(c.value("requested", ""), target);
  EXPECT_EQ(c.value("resolved", ""), "10.7.2.2");
  EXPECT_EQ(c.value("verdict", ""), "allowed");
  EXPECT_EQ(c.value("upstream", ""), "10.7.2.2:" + std::to_string(port));
  EXPECT_EQ(c.value("state", ""), "relaying");
  EXPECT_EQ(c.value("relay_mode", ""), "sockmap");
  auto table = ctl({"conns"});
  for (const std::string& shown : {target, std::string("10.7.2.2"), std::string("allowed")})
    EXPECT_NE(table.output.find(shown), std::string::npos) << table.output;
  // Both sockets of the tunnel are in the kernel relay's map, not read by the daemon.
  EXPECT_EQ(sockmap_sockets(daemon_->process().pid()), std::optional<std::size_t>(2))
      << "the tunnel is not on the sockmap relay";

  // 8 MiB each way through the tunnel and back, byte for byte.
  constexpr std::size_t kBytes = 8 << 20;
  std::string sent(kBytes, '\0');
  for (std::size_t i = 0; i < kBytes; ++i) sent[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::atomic<bool> wrote{false};
  std::thread writer([&] {
    wrote = itest::send_all(fd, sent);
    ::shutdown(fd, SHUT_WR);
  });
  std::string echoed = itest::recv_until_eof(fd, kBytes + 1);
  writer.join();
  EXPECT_TRUE(wrote);
  EXPECT_EQ(echoed.size(), kBytes);
  EXPECT_TRUE(echoed == sent) << "the echoed bytes differ";
  EXPECT_NE(wait_access(fmt::format(R"(listener=proxy name=echo\.test .*upstream=10\.7\.2\.2:{} )"
                                    R"(in={} out={} .*relay=sockmap end=clean requested=echo\.test:{} )"
                                    R"(resolved=10\.7\.2\.2 verdict=allowed)",
                                    port, kBytes + 4, kBytes + 4, port)),
            "")
      << access_log();
}

}  // namespace
}  // namespace snigate::vmtest
