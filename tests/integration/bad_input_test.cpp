// Junk, slow prereads, oversized hellos, unknown names and a refusing backend: each is logged
// with its reason, and the daemon goes on serving everybody else.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

// A port on 127.0.3.1 with nothing listening: bound, then closed.
std::uint16_t closed_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.3.1", &sa.sin_addr);
  bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  std::uint16_t port = local_port(fd);
  close(fd);
  return port;
}

class BadInput : public ::testing::Test {
 protected:
  TempDir dir;
  TlsBackend good{dir, "good.test"};
  Snigated d{dir, fmt::format(R"(
[daemon]
access_log = "@ACCESS_LOG@"
[[listener]]
name = "tls"
listen = "127.0.3.1:0"
table = "edge"
preread_timeout = "1s"
preread_max = 1024
[table.edge]
"good.test" = "good"
"dead.test" = "dead"
[backend.good]
servers = ["127.0.3.1:{}"]
[backend.dead]
servers = ["127.0.3.1:{}"]
connect_timeout = "2s"
)",
                              good.port(), closed_port())};

  // Sends `bytes` from source_ip and returns how long the daemon took to close.
  std::chrono::milliseconds closed_after(const std::string& source_ip, const std::string& bytes) {
    int fd = connect_to("127.0.3.1", d.port("tls"), source_ip, 10s);
    auto start = std::chrono::steady_clock::now();
    send_all(fd, bytes);
    recv_until_eof(fd);
    close(fd);
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  }

  // Sockets the daemon holds when idle: every bad connection must give its own back. (Pipes
  // are not counted: the splice relay keeps empty ones for reuse, splice_relay.cpp.)
  const std::size_t idle_fds = open_descriptors(d.process().pid(), "socket:");

  void still_serves() {
    EXPECT_EQ(s_client_subject(d.port("tls"), "good.test"), "good.test");
    EXPECT_TRUE(d.process().alive());
  }

  // Nothing is left of the bad connections once they are logged: no socket, no session.
  void nothing_left() {
    std::size_t fds = 0;
    for (int i = 0; i < 250; ++i) {
      fds = open_descriptors(d.process().pid(), "socket:");
      if (fds <= idle_fds) break;
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_LE(fds, idle_fds) << "sockets still open after the bad connections ended";
  }
};

TEST_F(BadInput, JunkIsAParseError) {
  EXPECT_LT(closed_after("127.0.3.20", "GET / HTTP/1.1\r\nHost: good.test\r\n\r\n"), 5s);
  EXPECT_NE(d.wait_access(std::regex(R"(peer=127\.0\.3\.20:.*end=parse_error detail=\S+)")), "")
      << d.access_log();
  EXPECT_LT(closed_after("127.0.3.21", std::string("\x80\x2e\x01\x03\x01", 5) + std::string(40, 'x')),
            5s);  // SSLv2-style hello
  EXPECT_NE(d.wait_access(std::regex(R"(peer=127\.0\.3\.21:.*end=parse_error)")), "");
  still_serves();
  nothing_left();
}

TEST_F(BadInput, OversizedHelloIsRefusedAtTheBound) {
  // A handshake record that announces 16 KiB: more than preread_max allows.
  std::string record("\x16\x03\x01\x40\x00\x01\x00\x3f\xfc", 9);
  record += std::string(2000, 'A');
  EXPECT_LT(closed_after("127.0.3.22", record), 5s);
  EXPECT_NE(d.wait_access(std::regex(R"(peer=127\.0\.3\.22:.*end=parse_error)")), "")
      << d.access_log();
  still_serves();
  nothing_left();
}

TEST_F(BadInput, SlowlorisPrereadsTimeOutWhileOthersAreServed) {
  // 50 clients each send three bytes of a record header and stall.
  std::vector<int> slow;
  for (int i = 0; i < 50; ++i) {
    slow.push_back(connect_to("127.0.3.1", d.port("tls"), "127.0.3.23", 10s));
    send_all(slow.back(), std::string("\x16\x03\x01", 3));
  }
  still_serves();  // served while the 50 are stalled
  const auto start = std::chrono::steady_clock::now();
  for (int fd : slow) {
    recv_until_eof(fd);  // the daemon closes each after preread_timeout
    close(fd);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_NE(d.wait_access(std::regex(R"(peer=127\.0\.3\.23:.*end=preread_timeout)")), "")
      << d.access_log();
  still_serves();
  nothing_left();
}

TEST_F(BadInput, RefusingBackendAndUnknownNameAreLogged) {
  RunResult r = run({"openssl", "s_client", "-connect", fmt::format("127.0.3.1:{}", d.port("tls")),
                     "-servername", "dead.test"}, "", 15s);
  EXPECT_EQ(r.output.find("subject="), std::string::npos) << r.output;
  EXPECT_NE(d.wait_access(std::regex(R"(name=dead\.test .*backend=dead .*end=refused detail=\S*(refused))")),
            "")
      << d.access_log();
  r = run({"openssl", "s_client", "-connect", fmt::format("127.0.3.1:{}", d.port("tls")),
           "-servername", "nobody.test"}, "", 15s);
  EXPECT_NE(d.wait_access(std::regex(R"(name=nobody\.test .*end=no_route)")), "")
      << d.access_log();
  still_serves();
  nothing_left();
}

}  // namespace
}  // namespace snigate::itest
