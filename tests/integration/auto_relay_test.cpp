// relay = "auto" relays a short exchange by copy, and a long stream one way, alone on its
// worker, by copy too: auto takes a pipe only for bursts that fill the buffer while others do
// (relay_choice.cpp says why; the vm-test
// RelayChoice.AutoSplicesBulkAndHandsOnlyInteractiveConnectionsToTheKernel shows streams both
// ways on splice, and interactive connections handed to the kernel): every byte through, and
// relay=copy in each access-log line.
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

constexpr std::size_t kLong = 1 << 20;

// Answers "ok" to a request for short.test, kLong bytes to any other, then closes.
void answer(int fd) {
  std::string head;
  char c;
  while (head.find("\r\n\r\n") == std::string::npos && recv(fd, &c, 1, 0) == 1) head += c;
  send_all(fd, head.find("short.test") != std::string::npos ? std::string("ok")
                                                             : std::string(kLong, 'x'));
}

TEST(AutoRelay, AShortExchangeAndALoneLongStreamGoByCopy) {
  TempDir dir;
  RawServer backend("127.0.3.1", answer);
  Snigated d(dir, http_config(backend.port()), {"--relay", "auto"});

  int fd = connect_to("127.0.3.1", d.port("http"), "127.0.3.42");
  send_all(fd, "GET / HTTP/1.1\r\nHost: short.test\r\n\r\n");
  EXPECT_EQ(recv_until_eof(fd), "ok");
  close(fd);
  EXPECT_NE(d.wait_access(std::regex(R"(peer=127\.0\.3\.42:\d+ .*out=2 .*relay=copy end=clean)")),
            "")
      << d.access_log();

  fd = connect_to("127.0.3.1", d.port("http"), "127.0.3.43");
  send_all(fd, "GET / HTTP/1.1\r\nHost: long.test\r\n\r\n");
  EXPECT_EQ(recv_until_eof(fd, 2 * kLong), std::string(kLong, 'x'));
  close(fd);
  EXPECT_NE(d.wait_access(std::regex(
                R"(peer=127\.0\.3\.43:\d+ .*out=1048576 .*relay=copy end=clean)")),
            "")
      << d.access_log();
}

}  // namespace
}  // namespace snigate::itest
