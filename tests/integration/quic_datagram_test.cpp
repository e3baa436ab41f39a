// A quic listener seen datagram by datagram: captured first flights from gtlsclient and the RFC
// appendices sent from a raw UDP socket, a raw UDP backend that answers what a server could.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

using Bytes = std::string;

Bytes datagram_file(const std::string& name) {
  std::ifstream in(std::string(SNIGATE_SOURCE_DIR) + "/tests/data/quic/" + name, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

sockaddr_in address(const std::string& ip, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

// A UDP socket on ip (ephemeral port) whose receives give up after a second.
class Udp {
 public:
  explicit Udp(const std::string& ip) : fd_(socket(AF_INET, SOCK_DGRAM, 0)) {
    sockaddr_in a = address(ip, 0);
    socklen_t len = sizeof a;
    timeval tv{1, 0};
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
        setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
      throw std::runtime_error("udp socket");
    port_ = ntohs(a.sin_port);
  }
  ~Udp() { close(fd_); }
  std::uint16_t port() const { return port_; }
  void send_to(const Bytes& d, const sockaddr_in& to) {
    ASSERT_EQ(sendto(fd_, d.data(), d.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to),
              static_cast<ssize_t>(d.size()));
  }
  // The next datagram and its sender; empty when none came within the second.
  std::pair<Bytes, sockaddr_in> receive() {
    Bytes buf(65536, '\0');
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
    buf.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return {buf, from};
  }

 private:
  int fd_;
  std::uint16_t port_ = 0;
};

class QuicDatagrams : public ::testing::Test {
 protected:
  TempDir dir;
  Udp backend{"127.0.3.6"};
  Udp client{"127.0.3.7"};

  std::string config(const std::string& listener_extra = {}, const std::string& idle = "1s",
                     const std::string& server_options = {}) const {
    return fmt::format(R"(
[daemon]
workers = 1
access_log = "@ACCESS_LOG@"
drain_timeout = "1s"
[[listener]]
name = "h3"
listen = "127.0.3.1:0"
protocol = "quic"
table = "edge"
preread_timeout = "300ms"
flow_idle_timeout = "{}"
{}
[table.edge]
"ffdhe.example.org" = "raw"
"example.com" = "raw"
[backend.raw]
servers = ["127.0.3.6:{}{}"]
)",
                       idle, listener_extra, backend.port(), server_options);
  }
};

// A hello over two datagrams: both are held until the second completes it, then arrive at the
// backend intact and in order; the backend's Version Negotiation reaches the client from the
// listener's address.
TEST_F(QuicDatagrams, HeldDatagramsReachTheBackendAndItsAnswerTheClient) {
  Snigated d(dir, config());
  const sockaddr_in listener = address("127.0.3.1", d.port("h3"));
  const Bytes first = datagram_file("gtlsclient-ffdhe-1.bin"), second = datagram_file("gtlsclient-ffdhe-2.bin");
  ASSERT_EQ(first.size(), 1200u);
  client.send_to(first, listener);
  client.send_to(second, listener);
  auto [got1, upstream] = backend.receive();
  auto [got2, upstream2] = backend.receive();
  EXPECT_TRUE(got1 == first) << got1.size() << " bytes";
  EXPECT_TRUE(got2 == second) << got2.size() << " bytes";
  ASSERT_EQ(upstream.sin_port, upstream2.sin_port);  // one upstream socket per flow

  // RFC 9000 17.2.1: version 0, the client's connection IDs swapped, versions offered.
  const Bytes vn = Bytes("\x80\x00\x00\x00\x00", 5) + Bytes("\x01\x5c", 2) + Bytes("\x00", 1) +
                   Bytes("\x00\x00\x00\x01", 4);
  backend.send_to(vn, upstream);
  auto [answer, from] = client.receive();
  EXPECT_TRUE(answer == vn) << answer.size() << " bytes";
  EXPECT_EQ(from.sin_addr.s_addr, listener.sin_addr.s_addr);
  EXPECT_EQ(from.sin_port, listener.sin_port);
  EXPECT_NE(d.wait_access(std::regex(fmt::format(
                R"(client=127\.0\.3\.7:{} .*name=ffdhe\.example\.org .*backend=raw .*in=2400 out=12 )"
                R"(.*end=timeout rule=exact packets_in=2 packets_out=1$)",
                client.port()))),
            "")
      << d.access_log();
}

// A server with source=ADDR gets the flow's datagrams from that address.
TEST_F(QuicDatagrams, ServerSourceAddressIsWhereDatagramsComeFrom) {
  Snigated d(dir, config({}, "1s", " source=127.0.3.9"));
  client.send_to(datagram_file("gtlsclient-ffdhe-1.bin"), address("127.0.3.1", d.port("h3")));
  client.send_to(datagram_file("gtlsclient-ffdhe-2.bin"), address("127.0.3.1", d.port("h3")));
  auto [got, upstream] = backend.receive();
  ASSERT_EQ(got.size(), 1200u);
  EXPECT_EQ(upstream.sin_addr.s_addr, address("127.0.3.9", 0).sin_addr.s_addr);
}

// Half a hello: nothing reaches the backend, and the flow ends at preread_timeout.
TEST_F(QuicDatagrams, HelloThatNeverCompletesEndsAtPrereadTimeout) {
  Snigated d(dir, config());
  client.send_to(datagram_file("gtlsclient-ffdhe-1.bin"), address("127.0.3.1", d.port("h3")));
  EXPECT_NE(d.wait_access(std::regex(R"(name=- .*backend=- upstream=- in=1200 out=0 .*end=preread_timeout )"
                                     R"(detail=no\\x20route\\x20within)")),
            "")
      << d.access_log();
  EXPECT_EQ(backend.receive().first, "");
}

// QUIC v2 (RFC 9369) routes as v1 does.
TEST_F(QuicDatagrams, VersionTwoInitialIsRouted) {
  Snigated d(dir, config());
  const Bytes v2 = datagram_file("rfc9369-a2-client-initial.bin");
  client.send_to(v2, address("127.0.3.1", d.port("h3")));
  EXPECT_TRUE(backend.receive().first == v2);
}

// A backend whose port answers with ICMP port unreachable: the flow ends refused, and its line
// keeps what was known by then (route, upstream, datagrams) with the reason.
TEST_F(QuicDatagrams, BackendPortUnreachableEndsTheFlowRefused) {
  std::uint16_t closed = 0;
  {
    Udp gone("127.0.3.9");
    closed = gone.port();
  }
  std::string c = config();
  const std::string server = fmt::format("127.0.3.6:{}", backend.port());
  c.replace(c.find(server), server.size(), fmt::format("127.0.3.9:{}", closed));
  Snigated d(dir, c);
  client.send_to(datagram_file("rfc9001-a2-client-initial.bin"), address("127.0.3.1", d.port("h3")));
  EXPECT_NE(d.wait_access(std::regex(fmt::format(
                R"(^\S+ client=127\.0\.3\.7:{0} peer=127\.0\.3\.7:{0} listener=h3 )"
                R"(name=example\.com alpn=\S+ backend=raw upstream=127\.0\.3\.9:{1} in=\d+ )"
                R"(out=0 connect_ms=[0-9.]+ duration_ms=[0-9.]+ relay=udp end=refused )"
                R"(detail=backend\\x20127\.0\.3\.9:{1}:\\x20port\\x20unreachable rule=exact )"
                R"(packets_in=1 packets_out=0$)",
                client.port(), closed))),
            "")
      << d.access_log();
}

// At max_flows a new client gets nothing, the routed flow keeps going, and once that flow is
// idle the newcomer's next Initial opens a flow.
TEST_F(QuicDatagrams, AtMaxFlowsNewFlowsAreRefusedUntilOneEnds) {
  Snigated d(dir, config("max_flows = 1"));
  const sockaddr_in listener = address("127.0.3.1", d.port("h3"));
  Udp other("127.0.3.8");
  const Bytes v1 = datagram_file("rfc9001-a2-client-initial.bin");
  const Bytes v2 = datagram_file("rfc9369-a2-client-initial.bin");
  client.send_to(v1, listener);
  EXPECT_TRUE(backend.receive().first == v1);
  other.send_to(v2, listener);
  EXPECT_EQ(backend.receive().first, "");
  EXPECT_TRUE(d.process().wait_for(std::regex(R"(listener h3: max_flows \(1\) reached)"), 5s));
  EXPECT_NE(d.wait_access(std::regex(R"(client=127\.0\.3\.7:\d+ .*end=timeout)")), "")
      << d.access_log();
  other.send_to(v2, listener);
  EXPECT_TRUE(backend.receive().first == v2);
}

// A stop takes no new flow and drains the routed ones like connections: one still forwarding
// when drain_timeout runs out is ended, logged, and the daemon exits.
TEST_F(QuicDatagrams, StopDrainsRoutedFlows) {
  Snigated d(dir, config({}, "30s"));
  const Bytes v1 = datagram_file("rfc9001-a2-client-initial.bin");
  client.send_to(v1, address("127.0.3.1", d.port("h3")));
  ASSERT_TRUE(backend.receive().first == v1);
  EXPECT_EQ(d.process().stop(SIGTERM, 10s), 0) << d.process().log();
  EXPECT_NE(d.access_log().find("name=example.com"), std::string::npos) << d.access_log();
  EXPECT_NE(d.access_log().find("end=drain_timeout"), std::string::npos) << d.access_log();
}

}  // namespace
}  // namespace snigate::itest
