// What a valid file turns into: the structs the daemon builds its listeners, tables and
// pools from, and the summary `snigated --check` prints.
#include <algorithm>

#include <gtest/gtest.h>

#include "config/config.h"

namespace snigate::config {
namespace {

// 1-based line of the first occurrence of `needle` in `text`.
std::size_t line_of(std::string_view text, std::string_view needle) {
  auto at = text.find(needle);
  return static_cast<std::size_t>(std::count(text.begin(), text.begin() + at, '\n')) + 1;
}

using namespace std::chrono_literals;

TEST(EmbeddedDefault, LoadsAndRunsWithoutRootOnLoopback) {
  Config c = load_string(embedded_default(), "<embedded default>");
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].protocol, Protocol::Tls);
  EXPECT_EQ(c.listeners[0].listen,
            boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 9443));
  EXPECT_EQ(c.listeners[1].protocol, Protocol::Http);
  EXPECT_EQ(c.listeners[1].listen,
            boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 9080));
  EXPECT_EQ(c.listeners[0].table, c.listeners[1].table);
  const TableConfig& t = c.tables.at(c.listeners[0].table);
  ASSERT_TRUE(t.default_backend);
  const BackendConfig& b = c.backends.at(*t.default_backend);
  ASSERT_EQ(b.servers.size(), 1u);
  EXPECT_EQ(b.servers[0].host, "127.0.0.1");
  EXPECT_EQ(b.servers[0].port, 8443);
  EXPECT_EQ(b.proxy_protocol, ProxyProtocol::Off);
  EXPECT_EQ(c.daemon.relay, relay::Mode::Auto);
  EXPECT_TRUE(c.daemon.control_socket.starts_with("/tmp/"));
  // No listener on a privileged port: the demo must start as an ordinary user.
  for (const auto& l : c.listeners) EXPECT_GE(l.listen.port(), 1024);
}

constexpr const char* kFull = R"(
[daemon]
workers = 2
relay = "splice"
control_socket = "/run/snigate/c.sock"
access_log = "/var/log/snigate/access.log"
log_level = "debug"
max_connections = 1000
max_pipes = 64
drain_timeout = "10s"
idle_timeout = "2m"
sockmap_queue_limit = 1048576
sockmap_handoff_after = 0

[[listener]]
listen = "[::1]:9446"
protocol = "tls"
table = "edge"
proxy_protocol_in = true
trusted_proxies = ["127.0.2.0/24", "::1"]
preread_timeout = "750ms"
preread_max = 8192

[[listener]]
name = "gw"
listen = "127.0.2.1:3128"
protocol = "connect"
allow = ["*.debian.org", "~^mirror[0-9]+\\.example\\.net$", "192.0.2.0/24"]
allow_private = true
auth = "basic:alice:s3cret"

[table.edge]
"~^z[0-9]+\\.example\\.com$" = "b"
"Sub.Example.COM." = "a"
"*.example.com" = "b"
"~^a[0-9]+\\.example\\.com$" = "a"
default = "a"
no_sni = "b"

[backend.a]
servers = ["192.0.2.10:443", "[2001:db8::1]:443 weight=2 backup max_fails=3 fail_timeout=30s"]
proxy_protocol = "v2"
connect_timeout = "1500ms"
max_tries = 2

[backend.b]
forward = 443
allow = ["*.example.com"]
allow_private = true

[bans]
enabled = false

[remote_ban]
listen = "127.0.2.1:7070"

[resolver]
servers = ["127.0.2.53"]

[[jail]]
name = "nginx"

[[jail]]
name = "sshd"
)";

TEST(Load, EveryKeyOfTheIssueShapeReachesItsStruct) {
  Config c = load_string(kFull, "full.toml");
  EXPECT_EQ(c.source, "full.toml");
  EXPECT_EQ(c.daemon.workers, 2u);
  EXPECT_EQ(c.daemon.relay, relay::Mode::Splice);
  EXPECT_EQ(c.daemon.control_socket, "/run/snigate/c.sock");
  EXPECT_EQ(c.daemon.access_log, "/var/log/snigate/access.log");
  EXPECT_EQ(c.daemon.log_level, "debug");
  EXPECT_EQ(c.daemon.max_connections, 1000u);
  EXPECT_FALSE(load_string(embedded_default(), "<embedded default>").daemon.max_connections)
      << "unset: derived from the descriptor limit";
  EXPECT_EQ(c.daemon.max_pipes, 64u);
  EXPECT_FALSE(load_string(embedded_default(), "<embedded default>").daemon.max_pipes)
      << "unset: a quarter of max_connections";
  EXPECT_EQ(c.daemon.drain_timeout, 10s);
  EXPECT_EQ(c.daemon.idle_timeout, 2min);
  EXPECT_EQ(c.daemon.sockmap_queue_limit, 1u << 20);
  EXPECT_EQ(c.daemon.sockmap_handoff_after, 0u);
  EXPECT_EQ(load_string(embedded_default(), "<embedded default>").daemon.sockmap_handoff_after,
            64u * 1024)
      << "unset: the first 64 KiB either way by copy, like relay = auto";

  ASSERT_EQ(c.listeners.size(), 2u);
  const ListenerConfig& tls = c.listeners[0];
  EXPECT_EQ(tls.name, "[::1]:9446");
  EXPECT_EQ(tls.listen.address(), boost::asio::ip::make_address("::1"));
  EXPECT_EQ(tls.listen.port(), 9446);
  EXPECT_TRUE(tls.proxy_protocol_in);
  ASSERT_EQ(tls.trusted_proxies.size(), 2u);
  EXPECT_EQ(tls.trusted_proxies[0].str(), "127.0.2.0/24");
  EXPECT_TRUE(tls.trusted_proxies[1].contains(boost::asio::ip::make_address("::1")));
  EXPECT_EQ(tls.preread_timeout, 750ms);
  EXPECT_EQ(tls.preread_max, 8192u);

  const ListenerConfig& gw = c.listeners[1];
  EXPECT_EQ(gw.name, "gw");
  EXPECT_EQ(gw.protocol, Protocol::Connect);
  EXPECT_TRUE(gw.table.empty());
  EXPECT_EQ(gw.allow, (std::vector<std::string>{"*.debian.org", "~^mirror[0-9]+\\.example\\.net$",
                                                "192.0.2.0/24"}));
  EXPECT_TRUE(gw.allow_private);
  EXPECT_EQ(gw.auth, "basic:alice:s3cret");

  const BackendConfig& a = c.backends.at("a");
  ASSERT_EQ(a.servers.size(), 2u);
  EXPECT_EQ(a.servers[0].host, "192.0.2.10");
  EXPECT_EQ(a.servers[0].weight, 1u);
  EXPECT_FALSE(a.servers[0].backup);
  EXPECT_EQ(a.servers[1].host, "2001:db8::1");
  EXPECT_EQ(a.servers[1].port, 443);
  EXPECT_EQ(a.servers[1].weight, 2u);
  EXPECT_TRUE(a.servers[1].backup);
  EXPECT_EQ(a.servers[1].max_fails, 3u);
  EXPECT_EQ(a.servers[1].fail_timeout, 30s);
  EXPECT_EQ(a.servers[1].text, "[2001:db8::1]:443 weight=2 backup max_fails=3 fail_timeout=30s");
  EXPECT_EQ(a.proxy_protocol, ProxyProtocol::V2);
  EXPECT_EQ(a.connect_timeout, 1500ms);
  EXPECT_EQ(a.max_tries, 2u);
  EXPECT_FALSE(a.forward_port);

  const BackendConfig& b = c.backends.at("b");
  EXPECT_TRUE(b.servers.empty());
  EXPECT_EQ(b.forward_port, 443);
  EXPECT_EQ(b.allow, std::vector<std::string>{"*.example.com"});
  EXPECT_TRUE(b.allow_private);
}

TEST(Load, TableKeepsFileOrderAndNormalisesNames) {
  Config c = load_string(kFull, "full.toml");
  const TableConfig& t = c.tables.at("edge");
  ASSERT_EQ(t.entries.size(), 4u);
  EXPECT_EQ(t.entries[0].kind, RouteEntry::Kind::Regex);
  EXPECT_EQ(t.entries[0].pattern, "^z[0-9]+\\.example\\.com$");
  EXPECT_EQ(t.entries[1].kind, RouteEntry::Kind::Exact);
  EXPECT_EQ(t.entries[1].pattern, "sub.example.com");
  EXPECT_EQ(t.entries[2].kind, RouteEntry::Kind::Wildcard);
  EXPECT_EQ(t.entries[2].pattern, "example.com");
  EXPECT_EQ(t.entries[3].kind, RouteEntry::Kind::Regex);
  EXPECT_EQ(t.entries[3].pattern, "^a[0-9]+\\.example\\.com$");
  EXPECT_EQ(t.entries[1].backend, "a");
  EXPECT_EQ(t.entries[1].where.begin.line, line_of(kFull, "\"Sub.Example.COM.\""));
  EXPECT_EQ(t.default_backend, "a");
  EXPECT_EQ(t.no_sni_backend, "b");
}

TEST(Load, OtherAreasSectionsStayInRawForThemToParse) {
  Config c = load_string(kFull, "full.toml");
  EXPECT_EQ(c.raw["bans"]["enabled"].value<bool>(), false);
  EXPECT_EQ(c.raw["remote_ban"]["listen"].value<std::string>(), "127.0.2.1:7070");
  EXPECT_EQ(c.raw["resolver"]["servers"][0].value<std::string>(), "127.0.2.53");
  ASSERT_TRUE(c.raw["jail"].is_array_of_tables());
  EXPECT_EQ(c.raw["jail"][1]["name"].value<std::string>(), "sshd");
  // Positions survive, so those areas can report file:line too.
  EXPECT_EQ(c.raw["jail"][1]["name"].node()->source().begin.line, line_of(kFull, "name = \"sshd\""));
}

TEST(Load, DefaultsWhenKeysAreAbsent) {
  Config c = load_string(R"(
[[listener]]
listen = "127.0.2.1:0"
table = "t"
[table.t]
default = "x"
[backend.x]
servers = "127.0.2.2:443"
)", "min.toml");
  EXPECT_EQ(c.daemon.workers, 0u);
  EXPECT_EQ(c.daemon.control_socket, "/run/snigate/control.sock");
  const ListenerConfig& l = c.listeners[0];
  EXPECT_EQ(l.protocol, Protocol::Tls);
  EXPECT_EQ(l.listen.port(), 0);
  EXPECT_EQ(l.preread_timeout, 5s);
  EXPECT_EQ(l.preread_max, 16384u);
  EXPECT_TRUE(l.defer_accept);
  const BackendConfig& x = c.backends.at("x");
  EXPECT_EQ(x.connect_timeout, 5s);
  EXPECT_EQ(x.max_tries, 3u);
  EXPECT_EQ(x.servers[0].max_fails, 1u);
  EXPECT_EQ(x.servers[0].fail_timeout, 10s);
}

TEST(Load, UnnamedEphemeralListenersGetDistinctNames) {
  Config c = load_string(R"(
[[listener]]
listen = "127.0.2.1:0"
table = "t"
[[listener]]
listen = "127.0.2.1:0"
protocol = "http"
table = "t"
[table.t]
default = "x"
[backend.x]
servers = "127.0.2.2:443"
)", "ephemeral.toml");
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].name, "127.0.2.1:0");
  EXPECT_EQ(c.listeners[1].name, "127.0.2.1:0#2");
}

TEST(Load, ReadsAFileAndNamesItAsSource) {
  std::string path = ::testing::TempDir() + "/snigate-config-test.toml";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(std::string(embedded_default()).c_str(), f);
    std::fclose(f);
  }
  Config c = load_file(path);
  EXPECT_EQ(c.source, path);
  EXPECT_EQ(c.listeners.size(), 2u);
  std::remove(path.c_str());
}

TEST(CheckSummary, ListsListenersRoutesAndServers) {
  std::string s = check_summary(load_string(kFull, "full.toml"));
  EXPECT_NE(s.find("full.toml: OK\n"), std::string::npos) << s;
  EXPECT_NE(s.find("listener [::1]:9446: tls on [::1]:9446, table edge, PROXY in from "
                   "127.0.2.0/24, ::1\n"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("listener gw: connect on 127.0.2.1:3128"), std::string::npos) << s;
  // The password is not printed.
  EXPECT_EQ(s.find("s3cret"), std::string::npos) << s;
  EXPECT_NE(s.find("  sub.example.com -> a\n  *.example.com -> b\n"), std::string::npos) << s;
  EXPECT_NE(s.find("  (no name) -> b\n  (default) -> a\n"), std::string::npos) << s;
  EXPECT_NE(s.find("  server [2001:db8::1]:443 weight=2 backup max_fails=3 fail_timeout=30s\n"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("backend b: proxy_protocol off, connect_timeout 5000ms, max_tries 3, forward "
                   "to the SNI name on port 443"),
            std::string::npos)
      << s;
  EXPECT_EQ(s.back(), '\n');
}

TEST(ToString, NamesMatchTheConfigWords) {
  EXPECT_STREQ(to_string(Protocol::Tls), "tls");
  EXPECT_STREQ(to_string(Protocol::Http), "http");
  EXPECT_STREQ(to_string(Protocol::Connect), "connect");
  EXPECT_STREQ(to_string(ProxyProtocol::Off), "off");
  EXPECT_STREQ(to_string(ProxyProtocol::V1), "v1");
  EXPECT_STREQ(to_string(ProxyProtocol::V2), "v2");
}

}  // namespace
}  // namespace snigate::config
