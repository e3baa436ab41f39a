// A backend sees exactly the PROXY header the spec describes (haproxy proxy-protocol.txt),
// followed by the client's own bytes, for v1, v2 with AUTHORITY and ALPN TLVs, and when the
// client itself came through a trusted proxy.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <map>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

// A backend that records everything one connection sends until EOF.
struct RecordingBackend {
  std::promise<std::string> got;
  RawServer server{"127.0.3.1", [this](int fd) { got.set_value(recv_until_eof(fd)); }};
  std::string wait(std::chrono::milliseconds timeout = 15s) {
    auto f = got.get_future();
    if (f.wait_for(timeout) != std::future_status::ready) return "<nothing>";
    return f.get();
  }
};

// Sends `bytes` from source_ip, half-closes, and waits for the daemon to close.
// False when the daemon closed before taking it all.
bool send_from(const std::string& source_ip, std::uint16_t port, const std::string& bytes,
               std::uint16_t* source_port = nullptr) {
  int fd = connect_to("127.0.3.1", port, source_ip);
  if (source_port) *source_port = local_port(fd);
  bool sent = send_all(fd, bytes);
  shutdown(fd, SHUT_WR);
  recv_until_eof(fd);
  close(fd);
  return sent;
}

std::string config(std::uint16_t v1, std::uint16_t v2) {
  return fmt::format(R"(
[daemon]
access_log = "@ACCESS_LOG@"
[[listener]]
name = "tls"
listen = "127.0.3.1:0"
table = "edge"
[[listener]]
name = "behind-lb"
listen = "127.0.3.1:0"
table = "edge"
proxy_protocol_in = true
trusted_proxies = ["127.0.3.8", "127.0.3.16/30"]
preread_timeout = "3s"
[table.edge]
"v1.test" = "v1"
"v2.test" = "v2"
[backend.v1]
servers = ["127.0.3.1:{}"]
proxy_protocol = "v1"
[backend.v2]
servers = ["127.0.3.1:{}"]
proxy_protocol = "v2"
)",
                     v1, v2);
}

std::string be16(unsigned v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }

// The TLVs of a v2 header with IPv4 (addr_len 12) or IPv6 (36) addresses: type -> value.
// Their order is free in the spec. Empty map with a failure when one overruns the header.
std::map<int, std::string> tlvs_of(const std::string& got, std::size_t addr_len) {
  std::map<int, std::string> tlvs;
  const std::size_t end = 16 + ((static_cast<unsigned char>(got[14]) << 8) |
                                static_cast<unsigned char>(got[15]));
  if (got.size() < end) {
    ADD_FAILURE() << "the header announces " << end << " bytes, got " << got.size();
    return {};
  }
  for (std::size_t at = 16 + addr_len; at + 3 <= end;) {
    int type = static_cast<unsigned char>(got[at]);
    unsigned l = (static_cast<unsigned char>(got[at + 1]) << 8) | static_cast<unsigned char>(got[at + 2]);
    if (at + 3 + l > end) {
      ADD_FAILURE() << "TLV " << type << " overruns the header";
      return {};
    }
    tlvs[type] = got.substr(at + 3, l);
    at += 3 + l;
  }
  return tlvs;
}

TEST(ProxyProtocol, V1HeaderThenTheClientHello) {
  TempDir dir;
  RecordingBackend v1, v2;
  Snigated d(dir, config(v1.server.port(), v2.server.port()));
  const std::string hello = capture_client_hello("v1.test", "h2");
  ASSERT_GT(hello.size(), 100u);
  std::uint16_t sport = 0;
  ASSERT_TRUE(send_from("127.0.3.7", d.port("tls"), hello, &sport));
  EXPECT_EQ(v1.wait(), fmt::format("PROXY TCP4 127.0.3.7 127.0.3.1 {} {}\r\n", sport,
                                   d.port("tls")) + hello);
}

// Bytes a client sends right behind its ClientHello, in the same write, reach the backend
// behind it while the connection stays open: a few that the preread's one read takes whole
// (its TCP_INQ hint says nothing is left, so the relay waits without reading), and more than
// it reads (the hint says more is queued, and the relay reads them).
TEST(ProxyProtocol, BytesSentWithTheClientHelloFollowIt) {
  const std::string hello = capture_client_hello("v1.test", "");
  for (std::size_t size : {100, 20000}) {
    const std::string pipelined = std::string(size - 4, 'p') + "END.";
    TempDir dir;
    std::promise<std::string> got;
    RawServer backend("127.0.3.1", [&](int fd) {
      std::string in;
      char buf[16384];
      while (!in.ends_with("END.")) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;  // the end, or the receive timeout
        in.append(buf, static_cast<std::size_t>(n));
      }
      got.set_value(in);
    });
    Snigated d(dir, config(backend.port(), backend.port()));
    int fd = connect_to("127.0.3.1", d.port("tls"));
    ASSERT_TRUE(send_all(fd, hello + pipelined));
    auto f = got.get_future();
    ASSERT_EQ(f.wait_for(15s), std::future_status::ready) << size;
    const std::string in = f.get();
    close(fd);
    const std::size_t header = in.find("\r\n") + 2;  // PROXY v1's line
    EXPECT_EQ(in.substr(header), hello + pipelined) << size;
  }
}
TEST(ProxyProtocol, V2HeaderWithAuthorityAndAlpnTlvs) {
  TempDir dir;
  RecordingBackend v1, v2;
  Snigated d(dir, config(v1.server.port(), v2.server.port()));
  const std::string hello = capture_client_hello("v2.test", "h2,http/1.1");
  std::uint16_t sport = 0;
  ASSERT_TRUE(send_from("127.0.3.7", d.port("tls"), hello, &sport));
  const std::string got = v2.wait();

  const std::string signature("\r\n\r\n\0\r\nQUIT\n", 12);
  ASSERT_GE(got.size(), 28u) << got;
  EXPECT_EQ(got.substr(0, 12), signature);
  EXPECT_EQ(got[12], '\x21');  // version 2, PROXY
  EXPECT_EQ(got[13], '\x11');  // TCP over IPv4
  const unsigned len = (static_cast<unsigned char>(got[14]) << 8) | static_cast<unsigned char>(got[15]);
  ASSERT_GE(got.size(), 16 + len);
  EXPECT_EQ(got.substr(16, 12), std::string("\x7f\x00\x03\x07\x7f\x00\x03\x01", 8) +
                                    be16(sport) + be16(d.port("tls")));
  auto tlvs = tlvs_of(got, 12);
  EXPECT_EQ(tlvs[0x02], "v2.test");  // PP2_TYPE_AUTHORITY: the SNI
  EXPECT_EQ(tlvs[0x01], "h2");       // PP2_TYPE_ALPN: the client's first choice
  EXPECT_EQ(got.substr(16 + len), hello);
}

TEST(ProxyProtocol, TrustedProxyAddressIsPassedOn) {
  TempDir dir;
  RecordingBackend v1, v2;
  Snigated d(dir, config(v1.server.port(), v2.server.port()));
  const std::string hello = capture_client_hello("v1.test", "");
  ASSERT_TRUE(send_from("127.0.3.8", d.port("behind-lb"),
                        "PROXY TCP4 203.0.113.9 198.51.100.1 5555 443\r\n" + hello));
  EXPECT_EQ(v1.wait(), "PROXY TCP4 203.0.113.9 198.51.100.1 5555 443\r\n" + hello);
  EXPECT_NE(d.wait_access(std::regex(
                R"(client=203\.0\.113\.9:5555 peer=127\.0\.3\.8:\d+ listener=behind-lb name=v1\.test)")),
            "")
      << d.access_log();
}

TEST(ProxyProtocol, V2InFromTrustedCidrBecomesV2OutWithTheRealClient) {
  TempDir dir;
  RecordingBackend v1, v2;
  Snigated d(dir, config(v1.server.port(), v2.server.port()));
  const std::string hello = capture_client_hello("v2.test", "http/1.1");
  // v2 in: PROXY TCP6 from 2001:db8::9 port 4000 to 2001:db8::1 port 443, no TLVs.
  std::string in("\r\n\r\n\0\r\nQUIT\n\x21\x21", 14);
  in += be16(36);
  std::string src(16, '\0'), dst(16, '\0');
  src[0] = dst[0] = '\x20'; src[1] = dst[1] = '\x01'; src[2] = dst[2] = '\x0d'; src[3] = dst[3] = '\xb8';
  src[15] = '\x09';
  dst[15] = '\x01';
  in += src + dst + be16(4000) + be16(443);
  ASSERT_TRUE(send_from("127.0.3.17", d.port("behind-lb"), in + hello));
  const std::string got = v2.wait();
  ASSERT_GE(got.size(), 52u);
  EXPECT_EQ(got[13], '\x21');  // TCP over IPv6
  EXPECT_EQ(got.substr(16, 36), src + dst + be16(4000) + be16(443));
  auto tlvs = tlvs_of(got, 36);
  EXPECT_EQ(tlvs[0x02], "v2.test");
  EXPECT_EQ(tlvs[0x01], "http/1.1");
  const unsigned len = (static_cast<unsigned char>(got[14]) << 8) | static_cast<unsigned char>(got[15]);
  EXPECT_EQ(got.substr(16 + len), hello);
  EXPECT_NE(d.wait_access(std::regex(R"(client=\[2001:db8::9\]:4000 peer=127\.0\.3\.17:)")), "")
      << d.access_log();
}

TEST(ProxyProtocol, HelloDrippedByteByByteArrivesWhole) {
  TempDir dir;
  RecordingBackend v1, v2;
  Snigated d(dir, config(v1.server.port(), v2.server.port()));
  const std::string hello = capture_client_hello("v1.test", "h2");
  ASSERT_GT(hello.size(), 100u);
  int fd = connect_to("127.0.3.1", d.port("tls"), "127.0.3.7");
  const std::uint16_t sport = local_port(fd);
  // One segment per byte (TCP_NODELAY, a pause now and then so they do not coalesce): the
  // daemon parses each arrival from where it stopped and still sees the whole hello.
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  for (std::size_t i = 0; i < hello.size(); ++i) {
    ASSERT_TRUE(send_all(fd, &hello[i], 1));
    if (i % 16 == 0) std::this_thread::sleep_for(1ms);
  }
  shutdown(fd, SHUT_WR);
  recv_until_eof(fd);
  close(fd);
  EXPECT_EQ(v1.wait(), fmt::format("PROXY TCP4 127.0.3.7 127.0.3.1 {} {}\r\n", sport,
                                   d.port("tls")) + hello);
  EXPECT_NE(d.wait_access(std::regex(R"(name=v1\.test alpn=h2 backend=v1 )")), "")
      << d.access_log();
}

TEST(ProxyProtocol, HeaderFromAnUntrustedPeerIsRefused) {
  TempDir dir;
  RecordingBackend v1, v2;
  Snigated d(dir, config(v1.server.port(), v2.server.port()));
  const std::string hello = capture_client_hello("v1.test", "");
  send_from("127.0.3.9", d.port("behind-lb"),
            "PROXY TCP4 203.0.113.9 198.51.100.1 5555 443\r\n" + hello);
  EXPECT_NE(d.wait_access(std::regex(R"(peer=127\.0\.3\.9:\d+ listener=behind-lb .*end=untrusted_proxy)")),
            "")
      << d.access_log();
  EXPECT_EQ(v1.wait(500ms), "<nothing>");  // the backend never saw the forged address
}

}  // namespace
}  // namespace snigate::itest
