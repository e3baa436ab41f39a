// A listener a reload keeps goes on as it ran: one accept loop on its TCP socket, one receive
// loop on its quic one. Reloads that started kept listeners again (until 04e8259) left a loop
// more per reload, each woken by every connection or datagram for an accept4 or recvmmsg that
// found nothing. strace runs the daemon here and counts those calls.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <sstream>

#include <gtest/gtest.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

constexpr int kReloads = 5;
constexpr std::size_t kConnections = 10, kDatagrams = 10;

// The calls of system call `name` in an `strace -f` log: those that returned something, and
// those that found nothing (EAGAIN).
struct Calls {
  std::size_t got = 0, again = 0;
};

Calls count_calls(const std::string& trace, const std::string& name) {
  Calls calls;
  std::istringstream lines(trace);
  for (std::string line; std::getline(lines, line);) {
    // "PID name(...) = R"; a call another thread's interrupted ends as "<... name resumed>".
    if (line.find(" " + name + "(") == std::string::npos &&
        line.find("<... " + name + " resumed>") == std::string::npos)
      continue;
    const auto at = line.rfind(") = ");
    if (at == std::string::npos) continue;  // "<unfinished ...>": counted where it resumes
    const std::string result = line.substr(at + 4);
    if (result.starts_with("-1 EAGAIN"))
      ++calls.again;
    else if (!result.empty() && std::isdigit(static_cast<unsigned char>(result[0])))
      ++calls.got;
  }
  return calls;
}

// How often `needle` is in `text`.
std::size_t occurrences(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Answers a request head with "ok\n" and closes.
void answer_ok(int fd) {
  std::string head;
  char c;
  while (head.find("\r\n\r\n") == std::string::npos && recv(fd, &c, 1, 0) == 1) head += c;
  send_all(fd, "ok\n");
}

TEST(KeptListener, ReloadsAddNoAcceptOrReceiveLoop) {
  if (run({"strace", "-o", "/dev/null", "true"}).exit_code != 0)
    GTEST_SKIP() << "SKIPPED LOUDLY: strace is not installed or may not trace (Debian: strace)";
  TempDir dir;
  RawServer backend("127.0.3.1", answer_ok);
  const fs::path trace = dir / "strace.log";
  // Signals (SIGHUP, SIGTERM) go to the daemon's own pid: strace running a program blocks them.
  Snigated d(dir,
             http_config(backend.port(), "workers = 1") +
                 "[[listener]]\nname = \"h3\"\nlisten = \"127.0.3.1:0\"\nprotocol = \"quic\"\n"
                 "table = \"t\"\n",
             {},
             {"strace", "-f", "-qq", "-e", "trace=accept4,recvmmsg", "-e", "signal=none", "-o",
              trace.string()});
  auto ready = d.process().wait_for(std::regex(R"(snigated ready \(pid (\d+)\))"));
  ASSERT_TRUE(ready) << d.log();
  const pid_t pid = std::stoi((*ready)[1].str());

  for (int i = 1; i <= kReloads; ++i) {
    ASSERT_EQ(kill(pid, SIGHUP), 0);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (occurrences(d.log(), "configuration reloaded") < static_cast<std::size_t>(i) &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    ASSERT_EQ(occurrences(d.log(), "configuration reloaded"), static_cast<std::size_t>(i))
        << d.log();
  }

  // One at a time, each answered before the next: a wake-up of the listener each.
  for (std::size_t i = 0; i < kConnections; ++i) {
    int fd = connect_to("127.0.3.1", d.port("http"));
    send_all(fd, "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n");
    EXPECT_EQ(recv_until_eof(fd), "ok\n");
    close(fd);
  }
  // Not QUIC Initials: each is read and dropped, opening no flow (and no socket of its own).
  int udp = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(d.port("h3"));
  inet_pton(AF_INET, "127.0.3.1", &to.sin_addr);
  for (std::size_t i = 0; i < kDatagrams; ++i) {
    sendto(udp, "stray", 5, 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
    std::this_thread::sleep_for(20ms);
  }
  close(udp);
  std::this_thread::sleep_for(100ms);

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  ASSERT_EQ(d.process().stop(0, 10s), 0) << d.log();  // strace exits with the daemon's status
  const std::string log = read_file(trace);
  // Each connection: one accept4 takes it, one finds the queue empty (and each loop's first
  // call finds it empty too). A second loop would add one that finds nothing per connection.
  const Calls accepts = count_calls(log, "accept4");
  EXPECT_EQ(accepts.got, kConnections) << log;
  EXPECT_LT(accepts.again, 2 * kConnections)
      << "accept4 calls that found no connection: " << accepts.again << " for " << kConnections
      << " connections after " << kReloads << " reloads";
  // Each wake-up: one recvmmsg reads what came. A second loop would find nothing, each time.
  const Calls receives = count_calls(log, "recvmmsg");
  EXPECT_GE(receives.got, 1u) << log;
  EXPECT_LT(receives.again, kDatagrams / 2)
      << "recvmmsg calls that found no datagram: " << receives.again << " for " << kDatagrams
      << " datagrams after " << kReloads << " reloads";
}

}  // namespace
}  // namespace snigate::itest
