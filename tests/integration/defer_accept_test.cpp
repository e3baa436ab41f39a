// defer_accept (issue 17): a TCP listener hands a connection to snigated only once the client
// has sent its first bytes, so a client that connected and said nothing yet holds no place
// under max_connections, and is served as usual once it speaks. Off, it holds one at once.
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

// Answers the line after the request head with "b:" and that line.
void answer_line(int fd) {
  std::string got;
  char c;
  while (got.find("\r\n\r\n") == std::string::npos && recv(fd, &c, 1, 0) == 1) got += c;
  got.clear();
  while (recv(fd, &c, 1, 0) == 1 && c != '\n') got += c;
  send_all(fd, "b:" + got + "\n");
}

// Sends a request and a line on `fd`; the answer line, or "" when the daemon closed it.
std::string ask(int fd, const std::string& line) {
  send_all(fd, "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n" + line + "\n");
  std::string got;
  char c;
  while (recv(fd, &c, 1, 0) == 1 && c != '\n') got += c;
  return got;
}

class DeferAccept : public ::testing::TestWithParam<bool> {};

TEST_P(DeferAccept, ASilentClientHoldsNoPlaceUntilItSpeaks) {
  const bool defer = GetParam();
  TempDir dir;
  RawServer backend("127.0.3.1", answer_line);
  Snigated d(dir, "[daemon]\naccess_log = \"@ACCESS_LOG@\"\nworkers = 1\nmax_connections = 1\n"
                  "max_connections_per_client = 0\nmax_prereads_per_client = 0\n"
                  "[[listener]]\nname = \"http\"\nlisten = \"127.0.3.1:0\"\nprotocol = \"http\"\n"
                  "table = \"t\"\ndefer_accept = " + std::string(defer ? "true" : "false") +
                  "\n[table.t]\ndefault = \"b\"\n[backend.b]\nservers = [\"127.0.3.1:" +
                  std::to_string(backend.port()) + "\"]\n");
  // Connected (the handshake is done on the client's side) but silent. The kernel hands a
  // deferred one over after ~1 s of silence anyway; the next connection comes well before.
  int silent = connect_to("127.0.3.1", d.port("http"));
  ASSERT_GE(silent, 0);

  int talker = connect_to("127.0.3.1", d.port("http"));
  ASSERT_GE(talker, 0);
  const std::string answer = ask(talker, "first");
  close(talker);
  if (defer) {
    EXPECT_EQ(answer, "b:first") << "the silent client took the only place\n" << d.access_log();
  } else {
    EXPECT_EQ(answer, "") << "accepted at once, the silent client holds the only place";
    EXPECT_NE(d.wait_access(std::regex("end=limit")), "") << d.access_log();
  }
  // Its place given back (the talker's line is logged when it leaves), the silent client is
  // served when it speaks: deferring loses no connection.
  EXPECT_NE(d.wait_access(std::regex(defer ? "end=" : "end=limit")), "") << d.access_log();
  EXPECT_EQ(ask(silent, "second"), "b:second") << d.access_log();
  close(silent);
}

INSTANTIATE_TEST_SUITE_P(OnAndOff, DeferAccept, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "On" : "Off"; });

}  // namespace
}  // namespace snigate::itest
