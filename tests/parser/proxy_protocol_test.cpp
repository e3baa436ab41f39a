#include "parser/proxy_protocol.h"

#include <gtest/gtest.h>

#include "tls_bytes.h"

namespace snigate::parser {
namespace {

using namespace test;
namespace ip = boost::asio::ip;

ip::tcp::endpoint ep(const char* address, std::uint16_t port) { return {ip::make_address(address), port}; }

ProxyDecode decode(std::string_view text) { return decode_proxy_header(bytes_of(text)); }

const std::string kSig("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A", 12);

// Reference CRC32c, bit by bit (RFC 3720 B.4), independent of the library's table version.
std::uint32_t crc32c(std::span<const std::uint8_t> data) {
  std::uint32_t crc = 0xffffffff;
  for (auto b : data) {
    crc ^= b;
    for (int i = 0; i < 8; ++i) crc = (crc >> 1) ^ (0x82f63b78 & (0u - (crc & 1)));
  }
  return ~crc;
}

// --- v1, with the examples of haproxy doc/proxy-protocol.txt section 2.1 ---

TEST(ProxyV1, SpecWorstCaseTcp4) {
  auto d = decode("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
  ASSERT_EQ(d.status, Status::Done) << d.error;
  EXPECT_EQ(d.header.version, 1);
  EXPECT_FALSE(d.header.local);
  EXPECT_EQ(d.header.source, ep("255.255.255.255", 65535));
  EXPECT_EQ(d.header.destination, ep("255.255.255.255", 65535));
  EXPECT_EQ(d.consumed, 56u);
}

TEST(ProxyV1, SpecWorstCaseTcp6) {
  const std::string max6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  std::string line = "PROXY TCP6 " + max6 + " " + max6 + " 65535 65535\r\n";
  auto d = decode(line);
  ASSERT_EQ(d.status, Status::Done) << d.error;
  EXPECT_EQ(d.header.source, ep("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535));
  EXPECT_EQ(d.consumed, line.size());
  EXPECT_EQ(line.size(), 104u);
}

TEST(ProxyV1, SpecUnknownForms) {
  auto d = decode("PROXY UNKNOWN\r\n");
  ASSERT_EQ(d.status, Status::Done) << d.error;
  EXPECT_TRUE(d.header.local);
  EXPECT_EQ(d.consumed, 15u);
  // The 107-byte worst case: everything after UNKNOWN is ignored.
  const std::string max6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  std::string line = "PROXY UNKNOWN " + max6 + " " + max6 + " 65535 65535\r\n";
  ASSERT_EQ(line.size(), 107u);
  d = decode(line);
  ASSERT_EQ(d.status, Status::Done) << d.error;
  EXPECT_TRUE(d.header.local);
  EXPECT_EQ(d.consumed, 107u);
}

TEST(ProxyV1, SpecExampleFollowedByRequest) {
  std::string wire = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n";
  auto d = decode(wire);
  ASSERT_EQ(d.status, Status::Done) << d.error;
  EXPECT_EQ(d.header.source, ep("192.168.0.1", 56324));
  EXPECT_EQ(d.header.destination, ep("192.168.0.11", 443));
  EXPECT_EQ(wire.substr(d.consumed, 3), "GET");
}

TEST(ProxyV1, ByteByByte) {
  std::string line = "PROXY TCP6 2001:db8::1 ::1 4000 443\r\n";
  for (std::size_t n = 0; n < line.size(); ++n)
    ASSERT_EQ(decode(line.substr(0, n)).status, Status::NeedMore) << n;
  auto d = decode(line);
  ASSERT_EQ(d.status, Status::Done) << d.error;
  EXPECT_EQ(d.header.source, ep("2001:db8::1", 4000));
}

TEST(ProxyV1, InvalidLinesAreRejected) {
  struct Case {
    const char* name;
    std::string text;
  };
  std::vector<Case> cases = {
      {"leading zero in address", "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"},
      {"leading zero in port", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"},
      {"port too big", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"},
      {"v6 address in TCP4", "PROXY TCP4 ::1 ::1 1 2\r\n"},
      {"v4 address in TCP6", "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"},
      {"zone id", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"},
      {"unknown protocol", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"},
      {"missing port", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"},
      {"extra field", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"},
      {"double space", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"},
      {"bare LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"},
      {"CR without LF", "PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n"},
      {"no CRLF in 107 bytes", "PROXY UNKNOWN " + std::string(100, 'a')},
      {"lower case", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"},
      {"not PROXY at all", "GET / HTTP/1.1\r\n"},
  };
  for (const auto& c : cases) {
    auto d = decode(c.text);
    EXPECT_EQ(d.status, Status::Error) << c.name;
    EXPECT_FALSE(d.error.empty()) << c.name;
  }
}

// --- v2 ---

TEST(ProxyV2, HeaderAsHaproxySendsIt) {
  // haproxy `send-proxy-v2` for 172.19.0.1:42578 -> 172.19.0.3:80, followed by the request.
  std::string wire = kSig + std::string("\x21\x11\x00\x0c\xac\x13\x00\x01\xac\x13\x00\x03\xa6\x52\x00\x50", 16) +
                     "GET / HTTP/1.1\r\n";
  auto d = decode(wire);
  ASSERT_EQ(d.status, Status::Done) << d.error;
  EXPECT_EQ(d.header.version, 2);
  EXPECT_EQ(d.header.source, ep("172.19.0.1", 42578));
  EXPECT_EQ(d.header.destination, ep("172.19.0.3", 80));
  EXPECT_EQ(d.consumed, 28u);
  EXPECT_FALSE(d.header.authority);
}

TEST(ProxyV2, LocalAndUnspecCarryNoAddress) {
  auto d = decode(kSig + std::string("\x20\x00\x00\x00", 4));
  ASSERT_EQ(d.status, Status::Done) << d.error;
  EXPECT_TRUE(d.header.local);
  EXPECT_EQ(d.consumed, 16u);
  // LOCAL with addresses (health checks may send them): still local, addresses skipped.
  d = decode(kSig + std::string("\x20\x11\x00\x0c", 4) + std::string(12, '\x01'));
  ASSERT_EQ(d.status, Status::Done) << d.error;
  EXPECT_TRUE(d.header.local);
  EXPECT_EQ(d.consumed, 28u);
  // PROXY command with AF_UNSPEC (the spec's "UNKNOWN").
  d = decode(kSig + std::string("\x21\x00\x00\x00", 4));
  ASSERT_EQ(d.status, Status::Done) << d.error;
  EXPECT_TRUE(d.header.local);
}

TEST(ProxyV2, Ipv6WithTlvsByteByByte) {
  auto wire = encode_proxy_v2(ep("2001:db8::7", 51000), ep("2001:db8::1", 443), "www.example.org", "h2");
  // An unknown TLV (PP2_TYPE_NOOP) is skipped.
  wire.insert(wire.end(), {0x04, 0x00, 0x02, 0xaa, 0xbb});
  wire[15] = static_cast<std::uint8_t>(wire[15] + 5);
  for (std::size_t n = 0; n < wire.size(); ++n)
    ASSERT_EQ(decode_proxy_header(std::span(wire).first(n)).status, Status::NeedMore) << n;
  auto d = decode_proxy_header(wire);
  ASSERT_EQ(d.status, Status::Done) << d.error;
  EXPECT_EQ(d.header.source, ep("2001:db8::7", 51000));
  EXPECT_EQ(d.header.destination, ep("2001:db8::1", 443));
  EXPECT_EQ(d.header.authority, "www.example.org");
  EXPECT_EQ(d.header.alpn, "h2");
  EXPECT_EQ(d.consumed, wire.size());
}

TEST(ProxyV2, Crc32cIsVerified) {
  std::uint8_t check[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  ASSERT_EQ(crc32c(check), 0xe3069283u);  // the reference implementation's check value

  auto wire = encode_proxy_v2(ep("10.0.0.1", 1000), ep("10.0.0.2", 443), "a.example");
  wire.insert(wire.end(), {0x03, 0x00, 0x04, 0, 0, 0, 0});
  wire[15] = static_cast<std::uint8_t>(wire[15] + 7);
  std::uint32_t crc = crc32c(wire);
  for (int i = 0; i < 4; ++i) wire[wire.size() - 4 + i] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
  auto d = decode_proxy_header(wire);
  ASSERT_EQ(d.status, Status::Done) << d.error;
  EXPECT_EQ(d.header.authority, "a.example");

  wire[20] ^= 1;  // one flipped address bit
  d = decode_proxy_header(wire);
  EXPECT_EQ(d.status, Status::Error);
  EXPECT_NE(d.error.find("CRC32C"), std::string::npos) << d.error;
}

TEST(ProxyV2, InvalidHeadersAreRejected) {
  struct Case {
    const char* name;
    std::string text;
  };
  std::vector<Case> cases = {
      {"version 1 nibble", kSig + std::string("\x11\x11\x00\x0c", 4) + std::string(12, '\0')},
      {"command 2", kSig + std::string("\x22\x11\x00\x0c", 4) + std::string(12, '\0')},
      {"datagram", kSig + std::string("\x21\x12\x00\x0c", 4) + std::string(12, '\0')},
      {"family 4", kSig + std::string("\x21\x41\x00\x0c", 4) + std::string(12, '\0')},
      {"too short for IPv4", kSig + std::string("\x21\x11\x00\x08", 4) + std::string(8, '\0')},
      {"too short for IPv6", kSig + std::string("\x21\x21\x00\x0c", 4) + std::string(12, '\0')},
      {"TLV overruns", kSig + std::string("\x21\x11\x00\x10", 4) + std::string(12, '\0') + std::string("\x02\x00\x09\x61", 4)},
      {"control byte in authority",
       kSig + std::string("\x21\x11\x00\x10", 4) + std::string(12, '\0') + std::string("\x02\x00\x01\x0a", 4)},
      {"broken signature", std::string("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0B", 12)},
  };
  for (const auto& c : cases) {
    auto d = decode(c.text);
    EXPECT_EQ(d.status, Status::Error) << c.name;
    EXPECT_FALSE(d.error.empty()) << c.name;
  }
}

TEST(ProxyDecode, EmptyInputNeedsMore) { EXPECT_EQ(decode("").status, Status::NeedMore); }

// --- encoders ---

TEST(ProxyEncode, V1Ipv4AndIpv6) {
  EXPECT_EQ(encode_proxy_v1(ep("192.168.0.1", 56324), ep("192.168.0.11", 443)),
            "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
  EXPECT_EQ(encode_proxy_v1(ep("2001:db8::1", 1), ep("::1", 2)), "PROXY TCP6 2001:db8::1 ::1 1 2\r\n");
}

TEST(ProxyEncode, MappedAddressesAreUnmapped) {
  // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d.
  EXPECT_EQ(encode_proxy_v1(ep("::ffff:203.0.113.9", 4000), ep("10.0.0.1", 443)),
            "PROXY TCP4 203.0.113.9 10.0.0.1 4000 443\r\n");
  auto v2 = encode_proxy_v2(ep("::ffff:203.0.113.9", 4000), ep("::ffff:10.0.0.1", 443));
  ASSERT_EQ(v2.size(), 28u);
  EXPECT_EQ(v2[13], 0x11);
  // Mixed families: the IPv4 side is mapped into IPv6.
  EXPECT_EQ(encode_proxy_v1(ep("203.0.113.9", 4000), ep("2001:db8::1", 443)),
            "PROXY TCP6 ::ffff:203.0.113.9 2001:db8::1 4000 443\r\n");
}

TEST(ProxyEncode, V2BytesMatchTheSpecLayout) {
  auto v2 = encode_proxy_v2(ep("172.19.0.1", 42578), ep("172.19.0.3", 80));
  std::string expect = kSig + std::string("\x21\x11\x00\x0c\xac\x13\x00\x01\xac\x13\x00\x03\xa6\x52\x00\x50", 16);
  EXPECT_EQ(std::string(v2.begin(), v2.end()), expect);

  auto with_tlvs = encode_proxy_v2(ep("172.19.0.1", 42578), ep("172.19.0.3", 80), "a.b", "h2");
  std::string tail(with_tlvs.begin() + 28, with_tlvs.end());
  EXPECT_EQ(tail, std::string("\x01\x00\x02h2\x02\x00\x03" "a.b", 11));
  EXPECT_EQ(with_tlvs[15], 12 + 11);
}

TEST(ProxyEncode, RoundTrips) {
  struct Case {
    ip::tcp::endpoint src, dst;
    std::string authority, alpn;
  };
  std::vector<Case> cases = {
      {ep("1.2.3.4", 0), ep("5.6.7.8", 65535), "", ""},
      {ep("2001:db8::1", 1234), ep("fe80::1", 443), "x.example", ""},
      {ep("10.1.1.1", 5), ep("10.2.2.2", 6), "", "http/1.1"},
      {ep("::", 1), ep("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 2), std::string(255, 'a'), "h2"},
  };
  for (const auto& c : cases) {
    auto v1 = encode_proxy_v1(c.src, c.dst);
    auto d1 = decode(v1);
    ASSERT_EQ(d1.status, Status::Done) << v1 << d1.error;
    EXPECT_EQ(d1.header.source, c.src);
    EXPECT_EQ(d1.header.destination, c.dst);
    EXPECT_EQ(d1.consumed, v1.size());

    auto v2 = encode_proxy_v2(c.src, c.dst, c.authority, c.alpn);
    auto d2 = decode_proxy_header(v2);
    ASSERT_EQ(d2.status, Status::Done) << d2.error;
    EXPECT_EQ(d2.header.source, c.src);
    EXPECT_EQ(d2.header.destination, c.dst);
    EXPECT_EQ(d2.header.authority.value_or(""), c.authority);
    EXPECT_EQ(d2.header.alpn.value_or(""), c.alpn);
    EXPECT_EQ(d2.consumed, v2.size());
  }
}

}  // namespace
}  // namespace snigate::parser
