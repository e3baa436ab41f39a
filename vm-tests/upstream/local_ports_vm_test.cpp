// Connects that find no free local port (EADDRNOTAVAIL). snigated runs in a namespace of its
// own whose net.ipv4.ip_local_port_range the test narrows to two ports, in front of servers
// that never accept: the kernel's accept queue holds each connection. Once each server holds
// two of snigated's connections, the next client is refused, with a log line that names the
// cause. The shortage is this host's, not the servers': neither may be marked down, so a
// client that comes once a port is free again is served, where fail_timeout (10 s) would
// have refused it for want of a server. A server listed again with source=ADDR gets the
// source's own two ports.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <sstream>
#include <thread>

#include "control/control_client.h"
#include "integration/harness.h"
#include "netns.h"

namespace snigate::vmtest {
namespace {

using namespace std::chrono_literals;

// A listener on ip:0 inside `ns` that nobody accepts on; its port in `port`.
int silent_listener(const std::string& ns, const std::string& ip, std::uint16_t& port) {
  int fd = -1;
  in_netns(ns, [&] { fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); });
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
  socklen_t len = sizeof sa;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::listen(fd, 16) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    throw std::runtime_error("cannot listen on " + ip);
  port = ntohs(sa.sin_port);
  return fd;
}

// Established connections in `ns` that ss's `filter` selects.
std::size_t established(const std::string& ns, const std::string& filter) {
  const auto r =
      itest::run({"ip", "netns", "exec", ns, "ss", "-Htn", "state", "established", filter});
  std::istringstream lines(r.output);
  std::size_t n = 0;
  for (std::string line; std::getline(lines, line);) n += !line.empty();
  return n;
}

// snigated's connections to the two servers (their own ends left out).
std::size_t upstreams(const std::string& ns, std::uint16_t a, std::uint16_t b) {
  return established(ns, "( dport = :" + std::to_string(a) + " or dport = :" +
                             std::to_string(b) + " )");
}

// `snigatectl stats`'s servers of backend b, over the control socket.
nlohmann::json servers(const itest::TempDir& dir) {
  std::string error;
  auto reply = control::ControlClient((dir / "control.sock").string())
                   .request({{"cmd", "stats"}}, error);
  if (!reply) throw std::runtime_error(error);
  return (*reply)["stats"]["servers"];
}

bool wait_upstreams(const std::string& ns, std::uint16_t a, std::uint16_t b, std::size_t n) {
  for (int i = 0; i < 100; ++i) {
    if (upstreams(ns, a, b) == n) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// snigated in `ns`, its backend b's servers `servers` (TOML strings, comma-separated), its
// http listener holding a request's client for a minute.
itest::Snigated snigated_in(const itest::TempDir& dir, const std::string& ns,
                            const std::string& servers) {
  return itest::Snigated(
      dir,
      "[daemon]\naccess_log = \"@ACCESS_LOG@\"\nworkers = 1\n"
      "max_connections_per_client = 0\nmax_prereads_per_client = 0\n"
      "[[listener]]\nname = \"http\"\nlisten = \"127.0.0.1:0\"\n"
      "protocol = \"http\"\ntable = \"t\"\npreread_timeout = \"60s\"\n"
      "[table.t]\ndefault = \"b\"\n[backend.b]\nservers = [" + servers + "]\n",
      {}, {"ip", "netns", "exec", ns});
}

// `n` clients of snigated's http listener, connected inside `ns` while the whole port range
// is there: only snigated's connects, made when each request arrives, meet a narrowed one.
std::vector<int> clients_in(const std::string& ns, std::uint16_t port, std::size_t n) {
  std::vector<int> clients(n);
  in_netns(ns, [&] {
    for (int& fd : clients) fd = itest::connect_to("127.0.0.1", port);
  });
  return clients;
}

// Two local ports in `ns` from now on.
void narrow_ports(const std::string& ns) {
  run("ip netns exec " + ns + " sysctl -qw net.ipv4.ip_local_port_range='40000 40001'");
}

const std::string kRequest = "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n";

TEST(NoFreeLocalPort, RefusesWithALogLineAndMarksNoServerDown) {
  if (auto why = netns_unavailable(); !why.empty()) GTEST_SKIP() << why;
  LoopbackHost host("sg-ports");
  const std::string& ns = host.name();
  std::uint16_t pa = 0, pb = 0;
  const int a = silent_listener(ns, "127.0.0.1", pa), b = silent_listener(ns, "127.0.0.2", pb);
  itest::TempDir dir;
  itest::Snigated d = snigated_in(
      dir, ns,
      "\"127.0.0.1:" + std::to_string(pa) + "\", \"127.0.0.2:" + std::to_string(pb) + "\"");
  // The last client waits for its turn in preread.
  std::vector<int> clients = clients_in(ns, d.port("http"), 6);
  narrow_ports(ns);
  for (std::size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(itest::send_all(clients[i], kRequest));
    ASSERT_TRUE(wait_upstreams(ns, pa, pb, i + 1)) << d.log() << d.access_log();
  }

  // Both ports are taken towards both servers.
  ASSERT_TRUE(itest::send_all(clients[4], kRequest));
  const std::regex refused(R"(end=refused detail=127\.0\.0\.\d:\d+:Cannot\\x20assign)");
  EXPECT_NE(d.wait_access(refused), "") << d.access_log();
  EXPECT_NE(d.log().find("no free local port towards 127.0.0."), std::string::npos) << d.log();
  // Counted as a shortage of its own, not as the servers' failures.
  const nlohmann::json s = servers(dir);
  for (const auto& name :
       {"b 127.0.0.1:" + std::to_string(pa), "b 127.0.0.2:" + std::to_string(pb)}) {
    EXPECT_EQ(s[name]["no_local_port"], 1) << s.dump();
    EXPECT_EQ(s[name]["failures"], 0) << s.dump();
  }

  // A client's reset passes on as a reset, which leaves no TIME_WAIT end to hold the port.
  const linger now{1, 0};
  ::setsockopt(clients[0], SOL_SOCKET, SO_LINGER, &now, sizeof now);
  ::close(clients[0]);
  clients[0] = -1;
  ASSERT_TRUE(wait_upstreams(ns, pa, pb, 3)) << d.access_log();
  ASSERT_TRUE(itest::send_all(clients[5], kRequest));
  EXPECT_TRUE(wait_upstreams(ns, pa, pb, 4))
      << "the next client found no server up: the shortage marked them down\n"
      << d.access_log();
  EXPECT_EQ(d.access_log().find("no server available"), std::string::npos) << d.access_log();

  for (int fd : clients)
    if (fd >= 0) ::close(fd);
  ::close(a);
  ::close(b);
}

TEST(SourceAddress, GivesTheSameServerPortsOfItsOwn) {
  if (auto why = netns_unavailable(); !why.empty()) GTEST_SKIP() << why;
  LoopbackHost host("sg-source");
  const std::string& ns = host.name();
  std::uint16_t p = 0;
  const int server = silent_listener(ns, "127.0.0.1", p);
  const std::string at = "127.0.0.1:" + std::to_string(p);
  itest::TempDir dir;
  itest::Snigated d = snigated_in(dir, ns, "\"" + at + "\", \"" + at + " source=127.0.0.2\"");
  std::vector<int> clients = clients_in(ns, d.port("http"), 5);
  narrow_ports(ns);
  // Two ports from each source, where one source alone ran out after two.
  for (std::size_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(itest::send_all(clients[i], kRequest));
    ASSERT_TRUE(wait_upstreams(ns, p, p, i + 1)) << d.log() << d.access_log();
  }
  EXPECT_EQ(established(ns, "( dport = :" + std::to_string(p) + " and src 127.0.0.2 )"), 2u);
  ASSERT_TRUE(itest::send_all(clients[4], kRequest));
  EXPECT_NE(d.wait_access(std::regex("end=refused")), "") << d.access_log();
  const nlohmann::json s = servers(dir);
  for (const auto& name : {"b " + at, "b " + at + " source=127.0.0.2"}) {
    EXPECT_EQ(s[name]["connects"], 2) << s.dump();
    EXPECT_EQ(s[name]["no_local_port"], 1) << s.dump();
  }
  for (int fd : clients) ::close(fd);
  ::close(server);
}

// A source address this host does not have is that entry's fault, not a port shortage: the
// client is refused with the bind's error and the entry counts a failure, as a refusing
// server's would (which marks it down where the backend has others).
TEST(SourceAddress, NotOnThisHostFailsItsEntry) {
  if (auto why = netns_unavailable(); !why.empty()) GTEST_SKIP() << why;
  LoopbackHost host("sg-nosource");
  const std::string& ns = host.name();
  std::uint16_t p = 0;
  const int server = silent_listener(ns, "127.0.0.1", p);
  const std::string entry = "127.0.0.1:" + std::to_string(p) + " source=192.0.2.1";
  itest::TempDir dir;
  itest::Snigated d = snigated_in(dir, ns, "\"" + entry + "\"");
  const int client = clients_in(ns, d.port("http"), 1).front();
  ASSERT_TRUE(itest::send_all(client, kRequest));
  EXPECT_NE(d.wait_access(std::regex(R"(end=refused .*binding\\x20source:\\x20Cannot)")), "")
      << d.access_log();
  const nlohmann::json s = servers(dir);
  EXPECT_EQ(s["b " + entry]["failures"], 1) << s.dump();
  EXPECT_EQ(s["b " + entry]["no_local_port"], 0) << s.dump();
  EXPECT_EQ(d.log().find("no free local port"), std::string::npos) << d.log();
  EXPECT_NE(d.log().find("source 192.0.2.1 is not an address of this host now"),
            std::string::npos)
      << d.log();
  ::close(client);
  ::close(server);
}

}  // namespace
}  // namespace snigate::vmtest
