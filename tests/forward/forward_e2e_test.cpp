// The forward modes end to end on 127.0.7.0/24: the real snigated between curl/openssl clients
// and an `openssl s_server` backend, with a dnsmasq the test starts as the only DNS server.
//   allowed.test -> 127.0.7.10 (the backend; listed by name, and its loopback address listed so
//                   the address policy lets it through)
//   inside.test  -> 127.0.7.11 (listed by name, address not listed: loopback, refused)
//   other.test   -> 127.0.7.10 (not listed: refused before any DNS query)
//   missing.test -> NXDOMAIN (listed)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

// dnsmasq cannot bind port 0, so it tries fixed high ports until one is free.
class DnsServer {
 public:
  explicit DnsServer(const TempDir& dir) {
    for (int port = 25353; port < 25353 + 40 && !process_; ++port) {
      auto p = std::make_unique<Process>(
          std::vector<std::string>{
              "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
              "--listen-address=127.0.7.53", "--bind-interfaces", "--port=" + std::to_string(port),
              "--pid-file=", "--user=root", "--log-queries", "--log-facility=-", "--local=/test/",
              "--local-ttl=60", "--host-record=allowed.test,127.0.7.10",
              "--host-record=inside.test,127.0.7.11", "--host-record=other.test,127.0.7.10"},
          dir / ("dnsmasq." + std::to_string(port) + ".log"));
      auto m = p->wait_for(std::regex("started, version|failed to create listening socket"));
      if (m && m->str() != "failed to create listening socket" && p->alive()) {
        process_ = std::move(p);
        port_ = port;
      }
    }
    if (!process_) throw std::runtime_error("no free port for dnsmasq on 127.0.7.53");
  }
  std::uint16_t port() const { return port_; }
  std::string log() const { return process_->log(); }

 private:
  std::unique_ptr<Process> process_;
  std::uint16_t port_ = 0;
};

// A DNS "server" that reads queries and never answers.
class SilentDns {
 public:
  SilentDns() {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(0x7f000735);  // 127.0.7.53
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      throw std::runtime_error("silent dns: bind failed");
    port_ = local_port(fd_);
  }
  ~SilentDns() { close(fd_); }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

class TlsBackend7 {
 public:
  TlsBackend7(const TempDir& dir, const std::string& cn) {
    Cert c = make_cert(dir, cn);
    process_ = std::make_unique<Process>(
        std::vector<std::string>{"openssl", "s_server", "-accept", "127.0.7.10:0", "-cert",
                                 c.cert.string(), "-key", c.key.string(), "-www"},
        dir / (cn + ".s_server.log"));
    auto m = process_->wait_for(std::regex(R"(ACCEPT 127\.0\.7\.10:(\d+))"));
    if (!m) throw std::runtime_error("openssl s_server did not start: " + process_->log());
    port_ = static_cast<std::uint16_t>(std::stoi((*m)[1]));
  }
  std::uint16_t port() const { return port_; }

 private:
  std::unique_ptr<Process> process_;
  std::uint16_t port_ = 0;
};

std::string config(std::uint16_t dns_port, std::uint16_t backend_port) {
  return fmt::format(R"(
[daemon]
workers = 1
access_log = "@ACCESS_LOG@"
[resolver]
servers = ["127.0.7.53:{0}"]
timeout = "1s"
[[listener]]
name = "proxy"
listen = "127.0.7.1:0"
protocol = "connect"
allow = ["allowed.test", "inside.test", "missing.test", "127.0.7.10/32"]
[[listener]]
name = "proxy_auth"
listen = "127.0.7.1:0"
protocol = "connect"
allow = ["allowed.test", "127.0.7.10/32"]
auth = "basic:alice:s3cret"
[[listener]]
name = "sni"
listen = "127.0.7.1:0"
table = "fwd"
[table.fwd]
default = "out"
[backend.out]
forward = {1}
allow = ["allowed.test", "inside.test", "127.0.7.10/32"]
)",
                     dns_port, backend_port);
}

// curl through the CONNECT listener; bounded so a hang fails the test instead of stalling it.
RunResult curl_via_proxy(std::uint16_t proxy, const std::string& host, std::uint16_t port,
                         std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{"curl", "-sS", "-k", "--max-time", "15", "--interface",
                                "127.0.7.2", "--proxy",
                                "http://127.0.7.1:" + std::to_string(proxy),
                                fmt::format("https://{}:{}/", host, port)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run(argv, {}, 20s);
}

class ForwardE2E : public ::testing::Test {
 protected:
  TempDir dir;
  DnsServer dns{dir};
  TlsBackend7 backend{dir, "allowed.test"};
  Snigated d{dir, config(dns.port(), backend.port())};
};

TEST_F(ForwardE2E, ConnectToAnAllowedNameReachesTheBackend) {
  auto r = curl_via_proxy(d.port("proxy"), "allowed.test", backend.port());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("s_server"), std::string::npos) << r.output;  // -www status page
  EXPECT_NE(d.wait_access(std::regex(fmt::format(
                R"(listener=proxy name=allowed\.test .*upstream=127\.0\.7\.10:{} .*end=clean)",
                backend.port()))),
            "")
      << d.access_log();
}

TEST_F(ForwardE2E, ConnectToANameOffTheListIs403) {
  auto r = curl_via_proxy(d.port("proxy"), "other.test", backend.port());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("CONNECT tunnel failed, response 403"), std::string::npos) << r.output;
  EXPECT_NE(d.wait_access(std::regex(R"(name=other\.test .*end=no_route.*verdict=denied-name)")),
            "")
      << d.access_log();
  EXPECT_EQ(dns.log().find("other.test"), std::string::npos) << "queried an unlisted name";
}

TEST_F(ForwardE2E, ConnectToANameResolvingToAForbiddenAddressIs403) {
  auto r = curl_via_proxy(d.port("proxy"), "inside.test", backend.port());
  EXPECT_NE(r.output.find("CONNECT tunnel failed, response 403"), std::string::npos) << r.output;
  EXPECT_NE(d.wait_access(std::regex(
                R"(name=inside\.test .*resolved=127\.0\.7\.11\\x20verdict=denied-address.*loopback)")),
            "")
      << d.access_log();
}

TEST_F(ForwardE2E, ConnectToANameThatDoesNotResolveIs502) {
  auto r = curl_via_proxy(d.port("proxy"), "missing.test", 443);
  EXPECT_NE(r.output.find("CONNECT tunnel failed, response 502"), std::string::npos) << r.output;
  EXPECT_NE(d.wait_access(std::regex(R"(name=missing\.test .*verdict=dns-not-found)")), "")
      << d.access_log();
}

TEST_F(ForwardE2E, ConnectAuthIsRequiredAndAcceptsTheRightUser) {
  auto none = curl_via_proxy(d.port("proxy_auth"), "allowed.test", backend.port());
  EXPECT_NE(none.output.find("response 407"), std::string::npos) << none.output;
  auto wrong = curl_via_proxy(d.port("proxy_auth"), "allowed.test", backend.port(),
                              {"--proxy-user", "alice:nope"});
  EXPECT_NE(wrong.output.find("response 407"), std::string::npos) << wrong.output;
  auto right = curl_via_proxy(d.port("proxy_auth"), "allowed.test", backend.port(),
                              {"--proxy-user", "alice:s3cret"});
  EXPECT_EQ(right.exit_code, 0) << right.output;
  EXPECT_NE(right.output.find("s_server"), std::string::npos) << right.output;
}

TEST_F(ForwardE2E, SniForwardingConnectsToTheNameItself) {
  auto port = std::to_string(d.port("sni"));
  auto r = run({"curl", "-sS", "-k", "--max-time", "15", "--interface", "127.0.7.2", "--resolve",
                "allowed.test:" + port + ":127.0.7.1", "https://allowed.test:" + port + "/"},
               {}, 20s);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("s_server"), std::string::npos) << r.output;
  EXPECT_NE(d.wait_access(std::regex(fmt::format(
                R"(listener=sni name=allowed\.test .*backend=out upstream=127\.0\.7\.10:{} .*end=clean)",
                backend.port()))),
            "")
      << d.access_log();
}

TEST_F(ForwardE2E, SniForwardingRefusesUnlistedAndInsideNames) {
  auto port = std::to_string(d.port("sni"));
  for (const std::string name : {"other.test", "inside.test"}) {
    auto r = run({"curl", "-sS", "-k", "--max-time", "15", "--interface", "127.0.7.2", "--resolve",
                  name + ":" + port + ":127.0.7.1", "https://" + name + ":" + port + "/"},
                 {}, 20s);
    EXPECT_NE(r.exit_code, 0) << r.output;
  }
  EXPECT_NE(d.wait_access(std::regex(R"(listener=sni name=other\.test .*verdict=denied-name)")), "")
      << d.access_log();
  EXPECT_NE(d.wait_access(std::regex(R"(listener=sni name=inside\.test .*verdict=denied-address)")),
            "")
      << d.access_log();
}

TEST_F(ForwardE2E, ConnectSpokenToATlsListenerIsExplainedAndClosed) {
  auto started = std::chrono::steady_clock::now();
  auto r = curl_via_proxy(d.port("sni"), "allowed.test", backend.port());
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s) << "hung instead of closing";
  EXPECT_NE(d.wait_access(std::regex(
                R"(listener=sni .*end=parse_error detail=client\\x20sent\\x20an\\x20HTTP\\x20CONNECT\\x20to\\x20a\\x20TLS\\x20listener)")),
            "")
      << d.access_log();
}

TEST(ForwardE2EDnsTimeout, SilentDnsGives504AndNothingHangs) {
  TempDir dir;
  SilentDns silent;
  TlsBackend7 backend{dir, "allowed.test"};
  Snigated d{dir, config(silent.port(), backend.port())};
  auto started = std::chrono::steady_clock::now();
  auto r = curl_via_proxy(d.port("proxy"), "allowed.test", backend.port());
  EXPECT_NE(r.output.find("CONNECT tunnel failed, response 504"), std::string::npos) << r.output;
  auto port = std::to_string(d.port("sni"));
  auto s = run({"curl", "-sS", "-k", "--max-time", "15", "--interface", "127.0.7.2", "--resolve",
                "allowed.test:" + port + ":127.0.7.1", "https://allowed.test:" + port + "/"},
               {}, 20s);
  EXPECT_NE(s.exit_code, 0) << s.output;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s) << "a DNS wait was not bounded";
  EXPECT_NE(d.wait_access(std::regex(R"(listener=proxy name=allowed\.test .*end=refused.*verdict=dns-timeout)")),
            "")
      << d.access_log();
  EXPECT_NE(d.wait_access(std::regex(R"(listener=sni name=allowed\.test .*end=refused.*verdict=dns-timeout)")),
            "")
      << d.access_log();
}

}  // namespace
}  // namespace snigate::itest
