// Daemon life: --check, graceful stop with a bounded drain, SIGHUP reload, the connection limit.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

// After the request head, answers each line with "NAME:line" until EOF.
RawServer::Handler echo_as(std::string name) {
  return [name](int fd) {
    std::string pending;
    char c;
    while (pending.find("\r\n\r\n") == std::string::npos && recv(fd, &c, 1, 0) == 1)
      pending += c;
    pending.clear();
    char buf[4096];
    for (;;) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      pending.append(buf, static_cast<std::size_t>(n));
      for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
        send_all(fd, name + ":" + pending.substr(0, nl + 1));
        pending.erase(0, nl + 1);
      }
    }
  };
}

// A connection through the daemon, past the preread: returns the fd.
int open_session(std::uint16_t port) {
  int fd = connect_to("127.0.3.1", port, "127.0.3.30", 5s);
  send_all(fd, "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n");
  return fd;
}

std::string line_through(int fd, const std::string& line) {
  if (!send_all(fd, line + "\n")) return "<send failed>";
  std::string got;
  char c;
  while (recv(fd, &c, 1, 0) == 1 && c != '\n') got += c;
  return got;
}

bool connect_refused(std::uint16_t port) {
  try {
    int fd = connect_to("127.0.3.1", port, {}, 2s);
    close(fd);
    return false;
  } catch (const std::exception&) {
    return true;
  }
}

TEST(Lifecycle, CheckPrintsTheSummaryOrTheFileLine) {
  TempDir dir;
  write_file(dir / "ok.toml", http_config(9));
  RunResult ok = run({SNIGATED_PATH, "--check", "-c", (dir / "ok.toml").string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("listener http"), std::string::npos) << ok.output;
  write_file(dir / "bad.toml", "[daemon]\nworkers = 1\n[[listener]]\nlisten = \"nowhere\"\n");
  RunResult bad = run({SNIGATED_PATH, "--check", "-c", (dir / "bad.toml").string()});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("bad.toml:4:"), std::string::npos) << bad.output;
  RunResult embedded = run({SNIGATED_PATH, "--check"});
  EXPECT_EQ(embedded.exit_code, 0) << embedded.output;
}

TEST(Lifecycle, SigtermDrainsLiveConnectionsThenStops) {
  TempDir dir;
  RawServer backend("127.0.3.1", echo_as("b"));
  Snigated d(dir, http_config(backend.port(), "drain_timeout = \"20s\""));
  int fd = open_session(d.port("http"));
  EXPECT_EQ(line_through(fd, "before"), "b:before");
  d.process().signal(SIGTERM);
  ASSERT_TRUE(d.process().wait_for(std::regex("stopped accepting")));
  EXPECT_TRUE(connect_refused(d.port("http")));
  EXPECT_EQ(line_through(fd, "during drain"), "b:during drain");
  close(fd);
  EXPECT_EQ(d.process().stop(0, 10s), 0);  // exits by itself once the connection is gone
  EXPECT_NE(d.wait_access(std::regex("end=clean")), "") << d.access_log();
}

TEST(Lifecycle, DrainIsBoundedByDrainTimeout) {
  TempDir dir;
  RawServer backend("127.0.3.1", echo_as("b"));
  Snigated d(dir, http_config(backend.port(), "drain_timeout = \"1s\""));
  int fd = open_session(d.port("http"));
  EXPECT_EQ(line_through(fd, "hi"), "b:hi");
  const auto start = std::chrono::steady_clock::now();
  d.process().signal(SIGTERM);
  EXPECT_EQ(d.process().stop(0, 10s), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(recv_until_eof(fd).find("b:"), std::string::npos);  // ended, not left hanging
  close(fd);
  EXPECT_NE(d.wait_access(std::regex("end=drain_timeout")), "") << d.access_log();
}

// A second SIGTERM during a long drain is answered, and the drain goes on; a third one ends
// the live connections at once, each logged as cut by the drain.
TEST(Lifecycle, SecondSigtermIsAnsweredAndAThirdEndsTheDrain) {
  TempDir dir;
  RawServer backend("127.0.3.1", echo_as("b"));
  Snigated d(dir, http_config(backend.port(), "drain_timeout = \"60s\""));
  int fd = open_session(d.port("http"));
  EXPECT_EQ(line_through(fd, "hi"), "b:hi");
  d.process().signal(SIGTERM);
  ASSERT_TRUE(d.process().wait_for(std::regex("stopped accepting")));
  d.process().signal(SIGTERM);
  ASSERT_TRUE(d.process().wait_for(std::regex("signal 15 again: already stopping, 1 connection")))
      << d.process().log();
  EXPECT_EQ(line_through(fd, "still"), "b:still");
  const auto start = std::chrono::steady_clock::now();
  d.process().signal(SIGTERM);
  EXPECT_EQ(d.process().stop(0, 10s), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(recv_until_eof(fd), "");
  close(fd);
  EXPECT_NE(d.wait_access(std::regex("end=drain_timeout")), "") << d.access_log();
}

// The bind line names each listener's protocol: a connect (forward proxy) listener is not a
// TLS one.
TEST(Lifecycle, BindLogNamesTheListenersProtocol) {
  TempDir dir;
  RawServer backend("127.0.3.1", echo_as("b"));
  Snigated d(dir, http_config(backend.port()) +
                      "[[listener]]\nname = \"proxy\"\nlisten = \"127.0.3.1:0\"\n"
                      "protocol = \"connect\"\nallow = [\"*.example.org\"]\n");
  EXPECT_TRUE(d.process().wait_for(std::regex(R"(listener proxy bound to 127\.0\.3\.1:\d+ \(connect\))")))
      << d.process().log();
  EXPECT_TRUE(d.process().wait_for(std::regex(R"(listener http bound to 127\.0\.3\.1:\d+ \(http\))")));
}

TEST(Lifecycle, SighupReloadsRoutesAndKeepsLiveConnections) {
  TempDir dir;
  RawServer one("127.0.3.1", echo_as("one")), two("127.0.3.1", echo_as("two"));
  Snigated d(dir, http_config(one.port()));
  int live = open_session(d.port("http"));
  EXPECT_EQ(line_through(live, "x"), "one:x");

  // A broken file is refused and the running configuration stays.
  write_file(d.config_path(), "[daemon]\nworkers = \"many\"\n");
  d.process().signal(SIGHUP);
  ASSERT_TRUE(d.process().wait_for(std::regex("reload rejected.*snigated\\.toml:2:")))
      << d.process().log();
  int fd = open_session(d.port("http"));
  EXPECT_EQ(line_through(fd, "y"), "one:y");
  close(fd);

  // Same listener, new backend: new connections go there, the live one stays where it was.
  std::string next = http_config(two.port());
  for (auto at = next.find("@ACCESS_LOG@"); at != std::string::npos; at = next.find("@ACCESS_LOG@"))
    next.replace(at, 12, (dir / "access.log").string());
  write_file(d.config_path(), next);
  d.process().signal(SIGHUP);
  ASSERT_TRUE(d.process().wait_for(std::regex("configuration reloaded")));
  fd = open_session(d.port("http"));
  EXPECT_EQ(line_through(fd, "z"), "two:z");
  close(fd);
  EXPECT_EQ(line_through(live, "still"), "one:still");
  close(live);
}

// A reload that cannot bind a listener it adds (a port in use) is rejected whole, and the
// listeners it would have kept stay the daemon's: a later reload that drops one closes it.
TEST(Lifecycle, AReloadRefusedForABusyPortKeepsTheListenersItWouldHaveKept) {
  TempDir dir;
  RawServer backend("127.0.3.1", echo_as("b"));
  Snigated d(dir, http_config(backend.port()));
  const std::uint16_t http = d.port("http");
  const std::string running = read_file(d.config_path());
  RawServer busy("127.0.3.1", echo_as("busy"));  // holds the port the next listener asks for
  write_file(d.config_path(), running + "\n[[listener]]\nname = \"late\"\nlisten = \"127.0.3.1:" +
                                  std::to_string(busy.port()) +
                                  "\"\nprotocol = \"http\"\ntable = \"t\"\n");
  d.process().signal(SIGHUP);
  ASSERT_TRUE(d.process().wait_for(std::regex("reload rejected"))) << d.process().log();
  int fd = open_session(http);
  EXPECT_EQ(line_through(fd, "kept"), "b:kept");
  close(fd);

  // The same listener under another name: the old one goes, and with it its port.
  std::string renamed = running;
  renamed.replace(renamed.find("name = \"http\""), 13, "name = \"next\"");
  write_file(d.config_path(), renamed);
  d.process().signal(SIGHUP);
  ASSERT_TRUE(d.process().wait_for(std::regex("configuration reloaded"))) << d.process().log();
  ASSERT_TRUE(d.process().wait_for(std::regex("listener http removed"))) << d.process().log();
  // The log line comes as the stop is asked for; the worker closes the port a moment later.
  bool closed = false;
  for (int i = 0; i < 250 && !(closed = connect_refused(http)); ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(closed) << "the listener the refused reload kept still accepts after 5 s";
}

// One address holding idle connections (nothing sent) fills only its own preread cap, not
// max_connections: one more from it is refused at once, and other clients are still served.
TEST(Lifecycle, IdlePrereadsAreCappedPerClient) {
  TempDir dir;
  RawServer backend("127.0.3.1", echo_as("b"));
  Snigated d(dir, http_config(backend.port(), "max_connections = 10\nmax_prereads_per_client = 3"));
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(connect_to("127.0.3.1", d.port("http"), "127.0.3.60"));
  const std::string refused = d.wait_access(std::regex(
      R"(client=127\.0\.3\.60:\d+ .*end=limit detail=127\.0\.3\.60\\x20already\\x20has\\x203\\x20connection\(s\)\\x20in\\x20preread)"));
  EXPECT_NE(refused, "") << d.access_log();
  int other = connect_to("127.0.3.1", d.port("http"), "127.0.3.61", 5s);
  send_all(other, "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n");
  EXPECT_EQ(line_through(other, "served"), "b:served");
  close(other);
  for (int fd : idle) close(fd);
}

TEST(Lifecycle, ConnectionLimitRefusesTheExtraOnes) {
  TempDir dir;
  RawServer backend("127.0.3.1", echo_as("b"));
  Snigated d(dir, http_config(backend.port(), "max_connections = 2"));
  int a = open_session(d.port("http")), b = open_session(d.port("http"));
  EXPECT_EQ(line_through(a, "a"), "b:a");
  EXPECT_EQ(line_through(b, "b"), "b:b");
  int c = open_session(d.port("http"));
  EXPECT_EQ(recv_until_eof(c), "");  // closed without reaching the backend
  close(c);
  EXPECT_NE(d.wait_access(std::regex("end=limit")), "") << d.access_log();
  close(a);
  close(b);
  // Both gone from the daemon's count before the next one comes.
  for (int i = 0; i < 500; ++i) {
    std::string log = d.access_log();
    std::size_t clean = 0;
    for (auto at = log.find("end=clean"); at != std::string::npos; at = log.find("end=clean", at + 1))
      ++clean;
    if (clean == 2) break;
    std::this_thread::sleep_for(20ms);
  }
  int e = open_session(d.port("http"));
  EXPECT_EQ(line_through(e, "again"), "b:again");
  close(e);
}

}  // namespace
}  // namespace snigate::itest
