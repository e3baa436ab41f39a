// How a relayed connection ended, in its access-log line: a backend's reset mid-response is
// `upstream_reset` (and the client sees what came before it), a silent connection past
// [daemon] idle_timeout is `timeout`. Each relay mode the daemon can fall back to.
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

// Reads the request head from fd (bounded by the harness's receive timeout).
void read_head(int fd) {
  std::string head;
  char c;
  while (head.find("\r\n\r\n") == std::string::npos && recv(fd, &c, 1, 0) == 1) head += c;
}

class EndReason : public ::testing::TestWithParam<const char*> {};

TEST_P(EndReason, BackendResetMidResponseIsUpstreamReset) {
  TempDir dir;
  RawServer backend("127.0.3.1", [](int fd) {
    read_head(fd);
    send_all(fd, "partial");
    std::this_thread::sleep_for(200ms);
    linger hard{1, 0};  // close with RST
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  });
  Snigated d(dir, http_config(backend.port(), "idle_timeout = \"1s\""), {"--relay", GetParam()});
  int fd = connect_to("127.0.3.1", d.port("http"), "127.0.3.40");
  send_all(fd, "GET / HTTP/1.1\r\nHost: r.test\r\n\r\n");
  EXPECT_EQ(recv_until_eof(fd), "partial");
  close(fd);
  EXPECT_NE(d.wait_access(std::regex(fmt::format(
                R"(peer=127\.0\.3\.40:\d+ .*out=7 .*relay={} end=upstream_reset)", GetParam()))),
            "")
      << d.access_log();
}

TEST_P(EndReason, SilentConnectionEndsAtIdleTimeout) {
  TempDir dir;
  RawServer backend("127.0.3.1", [](int fd) {
    read_head(fd);
    recv_until_eof(fd);  // silent until the daemon closes its side
  });
  Snigated d(dir, http_config(backend.port(), "idle_timeout = \"1s\""), {"--relay", GetParam()});
  int fd = connect_to("127.0.3.1", d.port("http"), "127.0.3.41");
  send_all(fd, "GET / HTTP/1.1\r\nHost: idle.test\r\n\r\n");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(recv_until_eof(fd), "");  // ended by the daemon, not by the 10 s receive timeout
  const auto took = std::chrono::steady_clock::now() - start;
  close(fd);
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 8s);
  EXPECT_NE(d.wait_access(std::regex(fmt::format(
                R"(peer=127\.0\.3\.41:\d+ .*relay={} end=timeout)", GetParam()))),
            "")
      << d.access_log();
}

INSTANTIATE_TEST_SUITE_P(Relay, EndReason, ::testing::Values("copy", "splice"));

}  // namespace
}  // namespace snigate::itest
