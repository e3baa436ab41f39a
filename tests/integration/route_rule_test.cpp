// Routing on more than the name ([[table.X.rule]]): the ALPN a real client offers and the
// address it comes from (its own, or the one a trusted PROXY header names) choose the backend,
// whose certificate or the access log says which answered; and `snigatectl route` and
// `snigated --check --route` tell the same answer before any client connects.
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

class RouteRules : public ::testing::Test {
 protected:
  TempDir dir;
  TlsBackend web{dir, "web.test"}, acme{dir, "acme.test"}, xmpp{dir, "xmpp.test"},
      internal{dir, "internal.test"}, fallback{dir, "default.test"};

  std::string config() const {
    return fmt::format(R"(
[daemon]
access_log = "@ACCESS_LOG@"
[[listener]]
name = "tls"
listen = "127.0.3.1:0"
table = "edge"
[[listener]]
name = "behind-lb"
listen = "127.0.3.1:0"
table = "edge"
proxy_protocol_in = true
trusted_proxies = ["127.0.3.0/24"]
[table.edge]
"chat.test" = "web"
"*.site.test" = "web"
default = "fallback"
[[table.edge.rule]]
alpn = ["acme-tls/1"]
backend = "acme"
[[table.edge.rule]]
name = "chat.test"
alpn = ["xmpp-client"]
backend = "xmpp"
[[table.edge.rule]]
name = "*.site.test"
client = ["127.0.3.8/29", "10.0.0.0/8"]
backend = "internal"
[backend.web]
servers = ["127.0.3.1:{}"]
[backend.acme]
servers = ["127.0.3.1:{}"]
[backend.xmpp]
servers = ["127.0.3.1:{}"]
[backend.internal]
servers = ["127.0.3.1:{}"]
[backend.fallback]
servers = ["127.0.3.1:{}"]
)",
                       web.port(), acme.port(), xmpp.port(), internal.port(), fallback.port());
  }

  // curl from `source` (an address of the loopback), the certificate subject it saw.
  static std::string curl_subject(std::uint16_t port, const std::string& name,
                                  const std::string& source) {
    const std::string p = std::to_string(port);
    RunResult r = run({"curl", "-sSkv", "--max-time", "10", "--interface", source, "--resolve",
                       name + ":" + p + ":127.0.3.1", "https://" + name + ":" + p + "/"});
    std::smatch m;
    if (std::regex_search(r.output, m, std::regex(R"(subject: CN=(\S+))"))) return m[1];
    return r.output;
  }
};

TEST_F(RouteRules, AcmeTlsAlpnReachesTheAcmeHostWhateverTheName) {
  Snigated d(dir, config());
  const auto port = d.port("tls");
  EXPECT_EQ(s_client_subject(port, "chat.test", "acme-tls/1"), "acme.test");
  EXPECT_EQ(s_client_subject(port, "www.site.test", "acme-tls/1"), "acme.test");
  // The same names with the protocols a browser offers go to their own backends.
  EXPECT_EQ(s_client_subject(port, "chat.test", "h2,http/1.1"), "web.test");
  EXPECT_EQ(s_client_subject(port, "www.site.test", "h2,http/1.1"), "web.test");
  EXPECT_EQ(s_client_subject(port, "other.test", "h2"), "default.test");
  EXPECT_NE(d.wait_access(std::regex(R"(name=chat\.test alpn=acme-tls/1 backend=acme .* rule=rule#1$)")),
            "")
      << d.access_log();
  EXPECT_NE(d.wait_access(std::regex(R"(name=other\.test alpn=h2 backend=fallback .* rule=default$)")),
            "")
      << d.access_log();
}

TEST_F(RouteRules, XmppOnTheSameNameAsTheWebSite) {
  Snigated d(dir, config());
  const auto port = d.port("tls");
  EXPECT_EQ(s_client_subject(port, "chat.test", "xmpp-client"), "xmpp.test");
  EXPECT_EQ(s_client_subject(port, "chat.test", "h2,xmpp-client"), "xmpp.test");
  EXPECT_EQ(s_client_subject(port, "chat.test", "http/1.1"), "web.test");
  EXPECT_EQ(s_client_subject(port, "chat.test"), "web.test");
}

TEST_F(RouteRules, ClientsFromTheOfficeRangeReachTheInternalBackend) {
  Snigated d(dir, config());
  const auto port = d.port("tls");
  EXPECT_EQ(curl_subject(port, "www.site.test", "127.0.3.9"), "internal.test");
  EXPECT_EQ(curl_subject(port, "a.b.site.test", "127.0.3.15"), "internal.test");
  EXPECT_EQ(curl_subject(port, "www.site.test", "127.0.3.20"), "web.test");
  EXPECT_EQ(curl_subject(port, "www.site.test", "127.0.3.7"), "web.test");
  // The rule is for *.site.test only: other names from the office go where their entries say.
  EXPECT_EQ(curl_subject(port, "chat.test", "127.0.3.9"), "web.test");
  EXPECT_NE(d.wait_access(std::regex(
                R"(client=127\.0\.3\.9:\d+ .*name=www\.site\.test .*backend=internal .* rule=rule#3$)")),
            "")
      << d.access_log();
}

TEST_F(RouteRules, BehindAProxyTheClientIsTheOneTheHeaderNames) {
  Snigated d(dir, config());
  const std::string hello = capture_client_hello("www.site.test", "h2");
  ASSERT_GT(hello.size(), 100u);
  for (const char* client : {"10.1.2.3", "203.0.113.9"}) {
    int fd = connect_to("127.0.3.1", d.port("behind-lb"), "127.0.3.20");
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, fmt::format("PROXY TCP4 {} 198.51.100.1 5555 443\r\n", client) + hello));
    // The backend answers the hello (a ServerHello and more); the route is what the log says.
    char byte = 0;
    EXPECT_EQ(recv(fd, &byte, 1, 0), 1);
    close(fd);
  }
  EXPECT_NE(d.wait_access(std::regex(
                R"(client=10\.1\.2\.3:5555 peer=127\.0\.3\.20:\d+ listener=behind-lb name=www\.site\.test .*backend=internal .* rule=rule#3$)")),
            "")
      << d.access_log();
  EXPECT_NE(d.wait_access(std::regex(
                R"(client=203\.0\.113\.9:5555 .*backend=web .* rule=\*\.site\.test$)")),
            "")
      << d.access_log();
}

TEST_F(RouteRules, RouteCommandAndCheckTellTheBackendAndTheRule) {
  Snigated d(dir, config());
  const std::string socket = (dir.path() / "control.sock").string();
  auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {SNIGATECTL_PATH, "--socket", socket, "route"});
    return run(args);
  };
  RunResult acme_route = ctl({"tls", "chat.test", "--alpn", "h2,acme-tls/1"});
  EXPECT_EQ(acme_route.exit_code, 0) << acme_route.output;
  EXPECT_TRUE(std::regex_match(acme_route.output,
                               std::regex("acme  \\(rule#1: " + d.config_path().string() +
                                          ":\\d+:1: alpn acme-tls/1\\)\n")))
      << acme_route.output;
  RunResult office = ctl({"tls", "www.site.test", "--client", "10.9.8.7"});
  EXPECT_NE(office.output.find("internal  (rule#3: "), std::string::npos) << office.output;
  RunResult plain = ctl({"tls", "www.site.test", "--client", "192.0.2.1"});
  EXPECT_EQ(plain.output, "web  (*.site.test)\n");
  RunResult nolistener = ctl({"nope", "x.test"});
  EXPECT_NE(nolistener.exit_code, 0);
  EXPECT_NE(nolistener.output.find("no listener 'nope' (listeners: tls, behind-lb)"),
            std::string::npos)
      << nolistener.output;

  // The same question to the configuration file, with no daemon asked.
  RunResult checked = run({SNIGATED_PATH, "--check", "-c", d.config_path().string(), "--route",
                           "tls", "chat.test", "--alpn", "xmpp-client"});
  EXPECT_EQ(checked.exit_code, 0) << checked.output;
  EXPECT_NE(checked.output.find("xmpp  (rule#2: "), std::string::npos) << checked.output;
}

TEST_F(RouteRules, CheckWarnsOfARuleThatCanNeverMatch) {
  std::string text = config() + R"(
[[table.edge.rule]]
name = "www.site.test"
client = ["10.1.0.0/16"]
backend = "web"
)";
  // The added rule is below rule#3, which takes every connection it would.
  Snigated d(dir, text);
  RunResult r = run({SNIGATED_PATH, "--check", "-c", d.config_path().string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("rule#4 (name www.site.test, client 10.1.0.0/16) never matches: rule#3 "
                          "(name *.site.test, client 127.0.3.8/29, 10.0.0.0/8) comes first"),
            std::string::npos)
      << r.output;
}

// A backend that answers one HTTP request with its own name, after `hold` (so a test can see
// the connection live).
RawServer::Handler answer_with(std::string name, std::chrono::milliseconds hold = {}) {
  return [name, hold](int fd) {
    std::string head;
    for (char c; head.find("\r\n\r\n") == std::string::npos && recv(fd, &c, 1, 0) == 1;) head += c;
    std::this_thread::sleep_for(hold);
    send_all(fd, "HTTP/1.0 200 OK\r\nContent-Length: " + std::to_string(name.size()) +
                     "\r\n\r\n" + name);
  };
}

TEST(RouteRulesHttp, ClientRulesRouteHttpByAddressAndConnsNameTheRule) {
  TempDir dir;
  RawServer office("127.0.3.1", answer_with("office", 1500ms)), world("127.0.3.1", answer_with("world"));
  Snigated d(dir, fmt::format(R"(
[daemon]
access_log = "@ACCESS_LOG@"
[[listener]]
name = "http"
listen = "127.0.3.1:0"
protocol = "http"
table = "t"
[table.t]
default = "world"
[[table.t.rule]]
client = ["127.0.3.8/29"]
backend = "office"
[backend.office]
servers = ["127.0.3.1:{}"]
[backend.world]
servers = ["127.0.3.1:{}"]
)",
                              office.port(), world.port()));
  const std::string url = "http://site.test:" + std::to_string(d.port("http")) + "/";
  auto get = [&](const char* source) {
    return run({"curl", "-sS", "--max-time", "10", "--interface", source, "--resolve",
                "site.test:" + std::to_string(d.port("http")) + ":127.0.3.1", url});
  };
  EXPECT_EQ(get("127.0.3.20").output, "world");
  // While the office backend holds its answer, the live connection names its rule.
  std::thread slow([&] { EXPECT_EQ(get("127.0.3.9").output, "office"); });
  std::string listed;
  for (int i = 0; i < 100 && listed.find("rule#1") == std::string::npos; ++i) {
    listed = run({SNIGATECTL_PATH, "--socket", (dir.path() / "control.sock").string(), "conns"})
                 .output;
    std::this_thread::sleep_for(20ms);
  }
  slow.join();
  EXPECT_NE(listed.find("office (rule#1)"), std::string::npos) << listed;
  EXPECT_NE(d.wait_access(std::regex(R"(client=127\.0\.3\.9:\d+ .*backend=office .* rule=rule#1$)")),
            "")
      << d.access_log();
}

}  // namespace
}  // namespace snigate::itest
