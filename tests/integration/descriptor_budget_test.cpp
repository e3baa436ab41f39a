// The descriptor budget (issue 17): under a RLIMIT_NOFILE the test sets, in each relay mode,
// connections past what the limit affords are refused at once with one log line, never left
// waiting in the backlog while accept() fails; the control socket still answers, and the
// daemon serves again once the held connections close.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

constexpr int kLimit = 256;

// Answers each line with "b:line" after the request head.
RawServer::Handler echo() {
  return [](int fd) {
    std::string pending;
    char c;
    while (pending.find("\r\n\r\n") == std::string::npos && recv(fd, &c, 1, 0) == 1) pending += c;
    pending.clear();
    char buf[4096];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) {
      pending.append(buf, static_cast<std::size_t>(n));
      for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
        send_all(fd, "b:" + pending.substr(0, nl + 1));
        pending.erase(0, nl + 1);
      }
    }
  };
}

// A relayed connection that answered a line, or -1 when the daemon closed it instead.
int served_connection(std::uint16_t port, const std::string& line) {
  int fd = connect_to("127.0.3.1", port, "127.0.3.40", 5s);
  send_all(fd, "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n" + line + "\n");
  std::string got;
  char c;
  while (recv(fd, &c, 1, 0) == 1 && c != '\n') got += c;
  if (got == "b:" + line) return fd;
  EXPECT_EQ(got, "") << "neither served nor refused";
  close(fd);
  return -1;
}

// One control request; the reply line, or empty.
std::string control(const fs::path& socket_path, const std::string& request) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      send_all(fd, request + "\n")) {
    char c;
    while (recv(fd, &c, 1, 0) == 1 && c != '\n') reply += c;
  }
  close(fd);
  return reply;
}

// Whether `snigatectl stats`' active count reaches `n` within 5 s; the last reply is printed
// when it does not.
bool active_becomes(const fs::path& socket_path, int n) {
  const std::regex active(R"("connections":\{"accepted":\d+,"active":(\d+)\})");
  std::string stats;
  for (int i = 0; i < 250; ++i) {
    stats = control(socket_path, R"({"cmd":"stats"})");
    std::smatch m;
    if (std::regex_search(stats, m, active) && std::stoi(m[1]) == n) return true;
    std::this_thread::sleep_for(20ms);
  }
  ADD_FAILURE() << "active never became " << n << ": " << stats;
  return false;
}

class DescriptorBudget : public ::testing::TestWithParam<const char*> {};

TEST_P(DescriptorBudget, ConnectionsPastTheBudgetAreRefusedAndTheDaemonRecovers) {
  TempDir dir;
  RawServer backend("127.0.3.1", echo());
  const std::string mode = GetParam();
  Snigated d(dir,
             http_config(backend.port(), "workers = 1\nrelay = \"" + mode +
                                             "\"\nmax_connections_per_client = 0\n"
                                             "max_prereads_per_client = 0\n"),
             {}, {"prlimit", "--nofile=" + std::to_string(kLimit), "--"});
  auto budget = d.process().wait_for(std::regex(
      R"(descriptors: limit (\d+), (\d+) per connection under relay (\w+): max_connections (\d+) \(derived from the limit\)(, max_pipes (\d+) \(a quarter of max_connections\))?)"));
  ASSERT_TRUE(budget) << d.process().log();
  EXPECT_EQ(std::stoi((*budget)[1]), kLimit);
  const int per_connection = std::stoi((*budget)[2]);
  const int max = std::stoi((*budget)[4]);
  // Splice's pipes (sockmap's fallback) come from a pool bounded apart: the sockets alone
  // count per connection, in every relay.
  EXPECT_EQ(per_connection, 2) << (*budget)[0];
  const bool splices = (*budget)[3] != "copy";
  EXPECT_EQ((*budget)[5].matched, splices) << (*budget)[0];
  const int max_pipes = splices ? std::stoi((*budget)[6]) : 0;
  EXPECT_EQ(max_pipes, splices ? max / 4 : 0) << (*budget)[0];
  ASSERT_GT(max, 8);
  EXPECT_LE(max * per_connection + max_pipes * 2, kLimit - 64)
      << "the budget leaves room for the rest";

  std::vector<int> held;
  for (int i = 0; i < max; ++i) {
    int fd = served_connection(d.port("http"), "n" + std::to_string(i));
    ASSERT_GE(fd, 0) << "connection " << i << " of a budget of " << max << "\n"
                     << d.process().log();
    held.push_back(fd);
  }
  // Each held connection has moved a line both ways and is idle now: under splice it gave its
  // pipes back (to a pool that the next connection took them from), so they are few.
  EXPECT_LE(open_descriptors(d.process().pid(), "pipe:"), 8u)
      << max << " idle connections hold pipes";
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(served_connection(d.port("http"), "extra"), -1) << "past the budget, refused";
  EXPECT_NE(d.wait_access(std::regex("end=limit")), "") << d.access_log();
  // One line for the eight refusals, and accept() never failed.
  const std::string log = d.process().log();
  EXPECT_NE(log.find("max_connections (" + std::to_string(max) + ") reached: refused 1 "),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("reached", log.find("reached") + 1), std::string::npos) << log;
  EXPECT_EQ(log.find("accept failed"), std::string::npos) << log;
  // The control socket answers at the limit; the refused ones leave the count as they end.
  EXPECT_TRUE(active_becomes(dir / "control.sock", max)) << "the control socket at the limit";

  for (int fd : held) close(fd);
  EXPECT_TRUE(active_becomes(dir / "control.sock", 0));
  int again = served_connection(d.port("http"), "again");
  EXPECT_GE(again, 0) << "served again once the held connections closed";
  if (again >= 0) close(again);
}

// A max_connections the limit cannot afford is lowered to what it can, and the log says how
// to allow more.
TEST(DescriptorBudgetConfigured, AboveTheLimitIsLoweredWithAdvice) {
  TempDir dir;
  RawServer backend("127.0.3.1", echo());
  Snigated d(dir, http_config(backend.port(), "workers = 1\nrelay = \"copy\"\nmax_connections = 100000\n"),
             {}, {"prlimit", "--nofile=" + std::to_string(kLimit), "--"});
  EXPECT_TRUE(d.process().wait_for(std::regex(
      R"(descriptors: \[daemon\] max_connections = 100000 needs up to 200000 descriptors under relay copy \(2 each\), and the limit is 256: using \d+ \(raise LimitNOFILE)")))
      << d.process().log();
  int fd = served_connection(d.port("http"), "hi");
  EXPECT_GE(fd, 0);
  if (fd >= 0) close(fd);
}

INSTANTIATE_TEST_SUITE_P(Relay, DescriptorBudget, ::testing::Values("copy", "splice", "sockmap"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace snigate::itest
