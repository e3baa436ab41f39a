// The parsers fed live by real clients on loopback (127.0.1.x): whatever openssl and curl on
// this machine send, read as it arrives, segment by segment.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "parser/http_host.h"
#include "parser/proxy_protocol.h"
#include "parser/tls_client_hello.h"

extern char** environ;

namespace snigate::parser {
namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr auto kDeadline = std::chrono::seconds(10);

class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, "127.0.1.1", &a.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 4) != 0)
      ADD_FAILURE() << "cannot listen on 127.0.1.1";
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~Listener() { ::close(fd_); }
  std::uint16_t port() const { return port_; }
  std::string port_str() const { return std::to_string(port_); }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// A client process with its output discarded; stopped and reaped when the test is done with it.
class Client {
 public:
  explicit Client(std::vector<std::string> argv) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Client() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  bool started() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

struct Received {
  Bytes bytes;
  std::size_t reads = 0;
  sockaddr_in peer{};
};

// Accepts one connection and reads until `decided` says the bytes so far are enough, the
// client closes, or the deadline passes.
Received receive(const Listener& l, const std::function<bool(const Bytes&)>& decided) {
  Received r;
  auto deadline = std::chrono::steady_clock::now() + kDeadline;
  auto left_ms = [&] {
    return static_cast<int>(std::max<long>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count()));
  };
  pollfd p{l.fd(), POLLIN, 0};
  if (::poll(&p, 1, left_ms()) != 1) return r;
  socklen_t len = sizeof r.peer;
  int fd = ::accept4(l.fd(), reinterpret_cast<sockaddr*>(&r.peer), &len, SOCK_CLOEXEC);
  if (fd < 0) return r;
  std::uint8_t buf[4096];
  while (!decided(r.bytes)) {
    pollfd q{fd, POLLIN, 0};
    if (::poll(&q, 1, left_ms()) != 1) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    r.bytes.insert(r.bytes.end(), buf, buf + n);
    ++r.reads;
  }
  ::close(fd);
  return r;
}

TlsPreread receive_hello(const Listener& l) {
  TlsPreread result;
  receive(l, [&](const Bytes& b) {
    result = parse_tls_preread(b);
    return result.status != Status::NeedMore;
  });
  return result;
}

TEST(LiveClients, OpensslTls13) {
  Listener l;
  Client c({"openssl", "s_client", "-connect", "127.0.1.1:" + l.port_str(), "-tls1_3", "-servername",
            "Live.Example.ORG", "-alpn", "h2,http/1.1"});
  ASSERT_TRUE(c.started());
  auto r = receive_hello(l);
  ASSERT_EQ(r.status, Status::Done) << r.detail;
  EXPECT_EQ(r.hello.sni, "live.example.org");
  EXPECT_EQ(r.hello.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(r.hello.supported_versions, std::vector<std::uint16_t>{0x0304});
}

TEST(LiveClients, OpensslTls12WithoutSni) {
  Listener l;
  Client c({"openssl", "s_client", "-connect", "127.0.1.1:" + l.port_str(), "-tls1_2", "-noservername"});
  ASSERT_TRUE(c.started());
  auto r = receive_hello(l);
  ASSERT_EQ(r.status, Status::Done) << r.detail;
  EXPECT_TRUE(r.hello.sni.empty());
  EXPECT_EQ(r.hello.legacy_version, 0x0303);
  EXPECT_TRUE(r.hello.supported_versions.empty());
}

TEST(LiveClients, OpensslHelloInSeveralRecords) {
  Listener l;
  std::string alpn = "h2";
  for (int i = 0; i < 40; ++i) alpn += ",protocol-name-" + std::to_string(i);
  Client c({"openssl", "s_client", "-connect", "127.0.1.1:" + l.port_str(), "-servername", "frag.example",
            "-alpn", alpn, "-max_send_frag", "512"});
  ASSERT_TRUE(c.started());
  TlsPreread r;
  Bytes seen;
  receive(l, [&](const Bytes& b) {
    seen = b;
    r = parse_tls_preread(b);
    return r.status != Status::NeedMore;
  });
  ASSERT_EQ(r.status, Status::Done) << r.detail;
  ASSERT_GT(seen.size(), 5u);
  std::size_t first_record = static_cast<std::size_t>(seen[3] << 8 | seen[4]);
  EXPECT_LE(first_record, 512u);
  EXPECT_GT(seen.size(), first_record + 5) << "the hello fit in one record";
  EXPECT_EQ(r.hello.sni, "frag.example");
  EXPECT_EQ(r.hello.alpn.size(), 41u);
}

TEST(LiveClients, CurlHttps) {
  Listener l;
  std::string url = "https://curl.example:" + l.port_str() + "/";
  Client c({"curl", "-sk", "--max-time", "10", "--resolve", "curl.example:" + l.port_str() + ":127.0.1.1", url});
  ASSERT_TRUE(c.started());
  auto r = receive_hello(l);
  ASSERT_EQ(r.status, Status::Done) << r.detail;
  EXPECT_EQ(r.hello.sni, "curl.example");
  EXPECT_NE(std::find(r.hello.alpn.begin(), r.hello.alpn.end(), "http/1.1"), r.hello.alpn.end());
}

TEST(LiveClients, CurlHttpHost) {
  Listener l;
  std::string url = "http://Web.Example:" + l.port_str() + "/page";
  Client c({"curl", "-s", "--max-time", "10", "--resolve", "web.example:" + l.port_str() + ":127.0.1.1", url});
  ASSERT_TRUE(c.started());
  HttpPreread r;
  receive(l, [&](const Bytes& b) {
    r = parse_http_preread(b);
    return r.status != Status::NeedMore;
  });
  ASSERT_EQ(r.status, Status::Done) << r.error;
  EXPECT_EQ(r.head.host, "web.example");
  EXPECT_EQ(r.head.port, l.port());
  EXPECT_EQ(r.head.target, "/page");
}

TEST(LiveClients, CurlConnectThroughProxy) {
  Listener l;
  Client c({"curl", "-s", "--max-time", "10", "-p", "-x", "http://127.0.1.1:" + l.port_str(),
            "https://tunnel.example:8443/"});
  ASSERT_TRUE(c.started());
  HttpPreread r;
  receive(l, [&](const Bytes& b) {
    r = parse_http_preread(b);
    return r.status != Status::NeedMore;
  });
  ASSERT_EQ(r.status, Status::Done) << r.error;
  EXPECT_EQ(r.head.method, "CONNECT");
  EXPECT_EQ(r.head.host, "tunnel.example");
  EXPECT_EQ(r.head.port, 8443);
}

TEST(LiveClients, CurlSendsProxyV1) {
  Listener l;
  Client c({"curl", "-s", "--max-time", "10", "--haproxy-protocol", "http://127.0.1.1:" + l.port_str() + "/"});
  ASSERT_TRUE(c.started());
  ProxyDecode d;
  HttpPreread h;
  auto got = receive(l, [&](const Bytes& b) {
    d = decode_proxy_header(b);
    if (d.status != Status::Done) return d.status == Status::Error;
    h = parse_http_preread(std::span(b).subspan(d.consumed));
    return h.status != Status::NeedMore;
  });
  ASSERT_EQ(d.status, Status::Done) << d.error;
  EXPECT_EQ(d.header.version, 1);
  // The header carries the connection's real endpoints, as the kernel saw them.
  EXPECT_EQ(d.header.source.address().to_v4().to_uint(), ntohl(got.peer.sin_addr.s_addr));
  EXPECT_EQ(d.header.source.port(), ntohs(got.peer.sin_port));
  EXPECT_EQ(d.header.destination.address().to_string(), "127.0.1.1");
  EXPECT_EQ(d.header.destination.port(), l.port());
  ASSERT_EQ(h.status, Status::Done) << h.error;
  EXPECT_EQ(h.head.host, "127.0.1.1");
}

}  // namespace
}  // namespace snigate::parser
