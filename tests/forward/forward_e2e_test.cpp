// The forward modes end to end on 127.0.7.0/24: the real snigated between curl/openssl clients
// and an `openssl s_server` backend, with a dnsmasq the test starts as the only DNS server.
//   allowed.test -> 127.0.7.10 (the backend; listed by name, and its loopback address listed so
//                   the address policy lets it through)
//   inside.test  -> 127.0.7.11 (listed by name, address not listed: loopback, refused)
//   other.test   -> 127.0.7.10 (not listed: refused before any DNS query)
//   missing.test -> NXDOMAIN (listed)
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "forward/local_dns.h"
#include "integration/harness.h"

namespace snigate::itest {
namespace {

class TlsBackend7 {
 public:
  TlsBackend7(const TempDir& dir, const std::string& cn) {
    Cert c = make_cert(dir, cn);
    process_ = std::make_unique<Process>(
        std::vector<std::string>{"setpriv", "--pdeathsig", "KILL", "--",  // ends with the test
                                 "openssl", "s_server", "-accept", "127.0.7.10:0", "-cert",
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

std::string config(std::uint16_t dns_port, std::uint16_t backend_port,
                   const std::string& dns_timeout = "1s") {
  return fmt::format(R"(
[daemon]
workers = 1
access_log = "@ACCESS_LOG@"
[resolver]
servers = ["127.0.7.53:{0}"]
timeout = "{2}"
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
name = "proxy_in"
listen = "127.0.7.1:0"
protocol = "connect"
proxy_protocol_in = true
trusted_proxies = ["127.0.7.3"]
allow = ["127.0.7.10/32"]
[[listener]]
name = "proxy_office"
listen = "127.0.7.1:0"
protocol = "connect"
allow = ["allowed.test", "127.0.7.10/32"]
clients = ["127.0.7.4/30"]
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
                     dns_port, backend_port, dns_timeout);
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

// `snigatectl conns --json` against the daemon's control socket (the harness puts it in dir).
nlohmann::json conns(const TempDir& dir) {
  auto r = run({SNIGATECTL_PATH, "--socket", (dir / "control.sock").string(), "conns", "--json"},
               {}, 10s);
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  if (r.exit_code != 0 || !j.is_array()) throw std::runtime_error("snigatectl conns: " + r.output);
  return j;
}

// The first listed connection for which `match` holds, polled for up to 10 s.
std::optional<nlohmann::json> wait_conn(const TempDir& dir,
                                        const std::function<bool(const nlohmann::json&)>& match) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  do {
    for (const auto& c : conns(dir))
      if (match(c)) return c;
    std::this_thread::sleep_for(50ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return std::nullopt;
}

// A raw client that sent `CONNECT target` and read the reply head.
struct Tunnel {
  int fd = -1;
  std::string head;
  Tunnel(std::uint16_t proxy, const std::string& target) {
    fd = connect_to("127.0.7.1", proxy, "127.0.7.2");
    send_all(fd, "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n");
  }
  ~Tunnel() { close(fd); }
  std::string read_head() {
    for (char c; head.find("\r\n\r\n") == std::string::npos && recv(fd, &c, 1, 0) == 1;) head += c;
    return head;
  }
};

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
                R"(listener=proxy name=allowed\.test .*upstream=127\.0\.7\.10:{0} .*end=clean )"
                R"(requested=allowed\.test:{0} resolved=127\.0\.7\.10 verdict=allowed)",
                backend.port()))),
            "")
      << d.access_log();
}

// proxy_protocol_in on a CONNECT listener: the PROXY header comes first, from a trusted proxy
// only, and names the client (whose bans then apply); an untrusted peer gets no tunnel.
TEST_F(ForwardE2E, ProxyHeaderIsReadBeforeTheConnectRequest) {
  const std::string target = "127.0.7.10:" + std::to_string(backend.port());
  const std::string request = "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n";
  int untrusted = connect_to("127.0.7.1", d.port("proxy_in"), "127.0.7.2", 3s);
  send_all(untrusted, request);
  auto refused = recv_until_eof(untrusted);
  close(untrusted);
  EXPECT_EQ(refused.find("200"), std::string::npos) << refused;
  EXPECT_NE(d.wait_access(std::regex(R"(peer=127\.0\.7\.2:\d+ listener=proxy_in .*end=untrusted_proxy)")),
            "")
      << d.access_log();

  int trusted = connect_to("127.0.7.1", d.port("proxy_in"), "127.0.7.3");
  send_all(trusted, "PROXY TCP4 192.0.2.99 127.0.7.1 5555 3128\r\n" + request);
  std::string head;
  for (char c; head.find("\r\n\r\n") == std::string::npos && recv(trusted, &c, 1, 0) == 1;) head += c;
  close(trusted);
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
  EXPECT_NE(d.wait_access(std::regex(R"(client=192\.0\.2\.99:5555 peer=127\.0\.7\.3:\d+ listener=proxy_in .*verdict=allowed)")),
            "")
      << d.access_log();
}

TEST_F(ForwardE2E, ConnectFromOutsideTheListenersClientsIs403) {
  auto outside = curl_via_proxy(d.port("proxy_office"), "allowed.test", backend.port());
  EXPECT_NE(outside.exit_code, 0);
  EXPECT_NE(outside.output.find("CONNECT tunnel failed, response 403"), std::string::npos)
      << outside.output;
  EXPECT_NE(d.wait_access(std::regex(
                R"(client=127\.0\.7\.2:\d+ .*listener=proxy_office .*end=no_route.*verdict=denied-client)")),
            "")
      << d.access_log();
  // From inside the range the tunnel opens.
  auto inside = run({"curl", "-sS", "-k", "--max-time", "15", "--interface", "127.0.7.5",
                     "--proxy", "http://127.0.7.1:" + std::to_string(d.port("proxy_office")),
                     fmt::format("https://allowed.test:{}/", backend.port())},
                    {}, 20s);
  EXPECT_EQ(inside.exit_code, 0) << inside.output;
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
                R"(name=inside\.test .*requested=inside\.test:\d+ resolved=127\.0\.7\.11 verdict=denied-address detail=127\.0\.7\.11:\\x20loopback)")),
            "")
      << d.access_log();
}

TEST_F(ForwardE2E, ConnectToANameThatDoesNotResolveIs502) {
  auto r = curl_via_proxy(d.port("proxy"), "missing.test", 443);
  EXPECT_NE(r.output.find("CONNECT tunnel failed, response 502"), std::string::npos) << r.output;
  EXPECT_NE(d.wait_access(std::regex(R"(name=missing\.test .*verdict=dns-not-found)")), "")
      << d.access_log();
}

TEST_F(ForwardE2E, JunkAndPlainRequestsToAConnectListenerAre400) {
  for (const std::string request : {"HELLO there\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"}) {
    int fd = connect_to("127.0.7.1", d.port("proxy"), "127.0.7.2");
    send_all(fd, request);
    std::string reply = recv_until_eof(fd);
    close(fd);
    EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  }
  EXPECT_NE(d.wait_access(std::regex(R"(listener=proxy .*end=parse_error .*verdict=bad-request detail=method\\x20GET)")),
            "")
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
                R"(listener=sni name=allowed\.test .*backend=out upstream=127\.0\.7\.10:{0} .*end=clean )"
                R"(requested=allowed\.test:{0} resolved=127\.0\.7\.10 verdict=allowed)",
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

TEST_F(ForwardE2E, ConnsShowsTheRequestedNameResolvedAddressAndVerdict) {
  // An SNI-forwarded TLS session, held open by s_client (-ign_eof: stdin is /dev/null). First,
  // since s_server serves one connection at a time and the tunnel below sends nothing.
  Process s_client({"openssl", "s_client", "-connect", "127.0.7.1:" + std::to_string(d.port("sni")),
                    "-servername", "allowed.test", "-ign_eof"},
                   dir / "s_client.log");
  ASSERT_TRUE(s_client.wait_for(std::regex("CN ?= ?allowed\\.test"))) << s_client.log();
  const std::string target = "allowed.test:" + std::to_string(backend.port());
  Tunnel tunnel(d.port("proxy"), target);
  ASSERT_EQ(tunnel.read_head().rfind("HTTP/1.1 200", 0), 0u) << tunnel.head;

  for (const std::string listener : {"proxy", "sni"}) {
    SCOPED_TRACE(listener);
    auto c = wait_conn(dir, [&](const nlohmann::json& j) {
      return j.value("listener", "") == listener && j.value("state", "") == "relaying";
    });
    ASSERT_TRUE(c) << conns(dir).dump();
    EXPECT_EQ(c->value("server_name", ""), "allowed.test");
    EXPECT_EQ(c->value("requested", ""), target);
    EXPECT_EQ(c->value("resolved", ""), "127.0.7.10");
    EXPECT_EQ(c->value("verdict", ""), "allowed");
    EXPECT_EQ(c->value("upstream", ""), "127.0.7.10:" + std::to_string(backend.port()));
    EXPECT_EQ(c->value("backend", ""), listener == "sni" ? "out" : "");
  }
  auto table = run({SNIGATECTL_PATH, "--socket", (dir / "control.sock").string(), "conns"}, {}, 10s);
  for (const std::string shown : {"REQUESTED", "RESOLVED", "VERDICT", "allowed", target.c_str()})
    EXPECT_NE(table.output.find(shown), std::string::npos) << table.output;
}

TEST(ForwardE2EDnsTimeout, ConnsShowsAPendingVerdictWhileDnsWaits) {
  TempDir dir;
  SilentDns silent;
  TlsBackend7 backend{dir, "allowed.test"};
  Snigated d{dir, config(silent.port(), backend.port(), "4s")};
  const std::string target = "allowed.test:" + std::to_string(backend.port());
  Tunnel tunnel(d.port("proxy"), target);
  auto c = wait_conn(dir, [&](const nlohmann::json& j) { return j.value("requested", "") == target; });
  ASSERT_TRUE(c);
  EXPECT_EQ(c->value("verdict", ""), "pending") << c->dump();
  EXPECT_EQ(c->value("state", ""), "connecting") << c->dump();
  EXPECT_EQ(c->value("resolved", "?"), "") << c->dump();
  EXPECT_EQ(tunnel.read_head().rfind("HTTP/1.1 504", 0), 0u) << tunnel.head;
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
