// Each name reaches its backend: the certificate subject (openssl s_client, curl) or the
// backend's own reply says which one answered.
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

class Routing : public ::testing::Test {
 protected:
  TempDir dir;
  TlsBackend a{dir, "a.test"}, b{dir, "b.test"}, fallback{dir, "default.test"},
      nosni{dir, "nosni.test"};

  std::string config(const std::string& extra = {}) const {
    return fmt::format(R"(
[daemon]
workers = 2
access_log = "@ACCESS_LOG@"
[[listener]]
name = "tls"
listen = "127.0.3.1:0"
table = "edge"
[table.edge]
"a.test" = "a"
"*.b.test" = "b"
"~^api[0-9]+\\.c\\.test$" = "a"
default = "fallback"
no_sni = "nosni"
[backend.a]
servers = ["127.0.3.1:{}"]
[backend.b]
servers = ["127.0.3.1:{}"]
[backend.fallback]
servers = ["127.0.3.1:{}"]
[backend.nosni]
servers = ["127.0.3.1:{}"]
{})",
                       a.port(), b.port(), fallback.port(), nosni.port(), extra);
  }
};

TEST_F(Routing, SClientServernameReachesItsBackend) {
  Snigated d(dir, config());
  const auto port = d.port("tls");
  EXPECT_EQ(s_client_subject(port, "a.test"), "a.test");
  EXPECT_EQ(s_client_subject(port, "A.TEST."), "a.test");  // case and trailing dot ignored
  EXPECT_EQ(s_client_subject(port, "www.b.test"), "b.test");
  EXPECT_EQ(s_client_subject(port, "deep.www.b.test"), "b.test");
  EXPECT_EQ(s_client_subject(port, "api7.c.test"), "a.test");  // regex
  EXPECT_EQ(s_client_subject(port, "api.c.test"), "default.test");
  EXPECT_EQ(s_client_subject(port, "b.test"), "default.test");  // apex is not in *.b.test
  EXPECT_EQ(s_client_subject(port, "unknown.example"), "default.test");
  EXPECT_EQ(s_client_subject(port, ""), "nosni.test");
  // One line per connection with every field: UTC time, real client and peer, listener, SNI,
  // ALPN, backend, upstream, bytes each way, connect time, duration, relay, how it ended.
  EXPECT_NE(d.wait_access(std::regex(
                R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z client=(127\.[0-9.]+:\d+) peer=\1 )"
                R"(listener=tls name=a\.test alpn=\S+ backend=a upstream=127\.0\.3\.1:\d+ in=[1-9]\d* )"
                R"(out=[1-9]\d* connect_ms=[0-9.]+ duration_ms=[0-9.]+ relay=\w+ end=clean rule=exact$)")),
            "") << d.access_log();
  EXPECT_NE(d.wait_access(std::regex(R"(name=- .*backend=nosni)")), "") << d.access_log();
}

TEST_F(Routing, CurlResolveReachesItsBackend) {
  Snigated d(dir, config());
  const auto port = std::to_string(d.port("tls"));
  for (auto [name, cn] : {std::pair{"a.test", "a.test"}, {"x.b.test", "b.test"},
                          {"other.test", "default.test"}}) {
    RunResult r = run({"curl", "-sSkv", "--max-time", "10", "--resolve",
                       std::string(name) + ":" + port + ":127.0.3.1",
                       "https://" + std::string(name) + ":" + port + "/"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(std::string("subject: CN=") + cn), std::string::npos)
        << name << ":\n" << r.output;
    EXPECT_NE(r.output.find("HTTP/1.0 200 ok"), std::string::npos) << r.output;
  }
  // curl offers ALPN; the access log names it.
  EXPECT_NE(d.wait_access(std::regex(R"(name=a\.test alpn=h2,http/1\.1 backend=a )")), "")
      << d.access_log();
}

TEST(HttpRouting, HostHeaderPicksTheBackend) {
  TempDir dir;
  auto answer = [](std::string who) {
    return [who](int fd) {
      std::string head;
      char c;
      while (head.find("\r\n\r\n") == std::string::npos && recv(fd, &c, 1, 0) == 1) head += c;
      send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(who.size()) +
                       "\r\nConnection: close\r\n\r\n" + who);
    };
  };
  RawServer one("127.0.3.1", answer("backend-one")), two("127.0.3.1", answer("backend-two"));
  Snigated d(dir, fmt::format(R"(
[daemon]
access_log = "@ACCESS_LOG@"
[[listener]]
name = "http"
listen = "127.0.3.1:0"
protocol = "http"
table = "web"
[table.web]
"one.test" = "one"
default = "two"
[backend.one]
servers = ["127.0.3.1:{}"]
[backend.two]
servers = ["127.0.3.1:{}"]
)",
                              one.port(), two.port()));
  const auto port = std::to_string(d.port("http"));
  auto get = [&](const std::string& host) {
    return run({"curl", "-sS", "--max-time", "10", "--resolve", host + ":" + port + ":127.0.3.1",
                "http://" + host + ":" + port + "/.well-known/acme-challenge/x"})
        .output;
  };
  EXPECT_EQ(get("one.test"), "backend-one");
  EXPECT_EQ(get("ONE.test"), "backend-one");
  EXPECT_EQ(get("two.test"), "backend-two");
  EXPECT_NE(d.wait_access(std::regex(R"(name=one\.test alpn=- backend=one .* end=clean)")), "")
      << d.access_log();
}

}  // namespace
}  // namespace snigate::itest
