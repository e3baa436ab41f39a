// Memory per idle relayed connection (issue 17): once relayed, a connection that moves no
// bytes holds no coroutine frame, buffer, pipe or timer of its own. Measured as a fresh
// daemon's RSS growth over many idle connections in each relay mode, against a
// bound between what such a connection costs with the callback relay (about 2.2 KB) and what
// it held while a coroutine chain ran it (8.5 KB).
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

constexpr int kConns = 1500;
constexpr long kMaxBytesPerConn = 4096;

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// Accepts connections and holds each once its request head has arrived, answering nothing.
class HoldingBackend {
 public:
  HoldingBackend() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(0x7f000301);  // 127.0.3.1
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) || listen(fd_, 4096))
      throw std::runtime_error("holding backend: cannot listen");
    port_ = local_port(fd_);
    thread_ = std::thread([this] {
      for (;;) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 200) < 0 || stop_) return;
        if (!(p.revents & POLLIN)) continue;
        int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        timeval t{10, 0};  // bounds the head read
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
        std::string head;
        char ch;
        while (head.find("\r\n\r\n") == std::string::npos && recv(c, &ch, 1, 0) == 1) head += ch;
        held_.push_back(c);
        ++ready_;
      }
    });
  }
  ~HoldingBackend() {
    stop_ = true;
    thread_.join();
    for (int c : held_) close(c);
    close(fd_);
  }
  std::uint16_t port() const { return port_; }
  int ready() const { return ready_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> ready_{0};
  std::vector<int> held_;
  std::thread thread_;
};

class IdleMemory : public ::testing::TestWithParam<const char*> {};

TEST_P(IdleMemory, AnIdleRelayedConnectionHoldsAFewKilobytes) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < 2 * kConns + 256) GTEST_SKIP() << "SKIPPED: RLIMIT_NOFILE too low";

  TempDir dir;
  HoldingBackend backend;
  Snigated d(dir,
             http_config(backend.port(), "workers = 1\nmax_connections_per_client = 0\n"
                                         "max_prereads_per_client = 0\n"),
             {"--relay", GetParam()});
  std::vector<int> clients;
  auto open = [&](int n) {
    for (int i = 0; i < n; ++i) {
      int fd = connect_to("127.0.3.1", d.port("http"), "127.0.3.61");
      ASSERT_TRUE(send_all(fd, "GET / HTTP/1.1\r\nHost: idle.test\r\n\r\n"));
      clients.push_back(fd);
    }
  };
  auto wait_ready = [&](int n) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (backend.ready() < n && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
    ASSERT_EQ(backend.ready(), n) << d.process().log();
  };
  // The first connections pay for what every later one shares (pools, thread caches).
  open(100);
  wait_ready(100);
  const long before = rss_kib(d.process().pid());
  open(kConns);
  wait_ready(100 + kConns);
  const long after = rss_kib(d.process().pid());
  for (int fd : clients) close(fd);
  ASSERT_GT(before, 0);
  const long per_conn = (after - before) * 1024 / kConns;
  EXPECT_LE(per_conn, kMaxBytesPerConn) << "RSS " << before << " KiB -> " << after << " KiB";
}

// sockmap: an idle connection has not proven long, so it is still on copy (7.6 KB while the
// kernel relay's watchers held every connection). Without the rights to load BPF it runs
// on splice, under the same bound.
INSTANTIATE_TEST_SUITE_P(Relay, IdleMemory, ::testing::Values("copy", "splice", "sockmap"));

}  // namespace
}  // namespace snigate::itest
