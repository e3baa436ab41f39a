#include "parser/http_host.h"

#include <gtest/gtest.h>

#include "tls_bytes.h"

namespace snigate::parser {
namespace {

using test::bytes_of;

HttpPreread parse(std::string_view text, std::size_t max = 8192) { return parse_http_preread(bytes_of(text), max); }

TEST(HttpPreread, HostHeaderLowerCasedAndPortStripped) {
  auto r = parse("GET /index.html HTTP/1.1\r\nhOsT: WWW.Example.ORG:8080\r\nAccept: */*\r\n\r\n");
  ASSERT_EQ(r.status, Status::Done) << r.error;
  EXPECT_EQ(r.head.host, "www.example.org");
  EXPECT_EQ(r.head.port, 8080);
  EXPECT_EQ(r.head.method, "GET");
  EXPECT_EQ(r.head.target, "/index.html");
  EXPECT_EQ(r.head.version_minor, 1);
  ASSERT_NE(r.head.header("ACCEPT"), nullptr);
  EXPECT_EQ(*r.head.header("accept"), "*/*");
  EXPECT_EQ(r.head.header("cookie"), nullptr);
}

TEST(HttpPreread, HostWithoutPortAndTrailingDot) {
  auto r = parse("HEAD / HTTP/1.1\r\nHost: example.org.\r\n\r\n");
  ASSERT_EQ(r.status, Status::Done) << r.error;
  EXPECT_EQ(r.head.host, "example.org");
  EXPECT_FALSE(r.head.port);
}

TEST(HttpPreread, AbsoluteFormTargetWinsOverHost) {
  auto r = parse("GET HTTP://Backend.Example:81/path?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n");
  ASSERT_EQ(r.status, Status::Done) << r.error;
  EXPECT_EQ(r.head.host, "backend.example");
  EXPECT_EQ(r.head.port, 81);
}

TEST(HttpPreread, Ipv6LiteralHosts) {
  auto r = parse("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
  ASSERT_EQ(r.status, Status::Done) << r.error;
  EXPECT_EQ(r.head.host, "::1");
  EXPECT_EQ(r.head.port, 8080);
  r = parse("GET http://[2001:DB8:0::1]/ HTTP/1.0\r\n\r\n");
  ASSERT_EQ(r.status, Status::Done) << r.error;
  EXPECT_EQ(r.head.host, "2001:db8::1");
  EXPECT_FALSE(r.head.port);
}

TEST(HttpPreread, ConnectAuthorityForm) {
  auto r = parse("CONNECT Example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n"
                 "Proxy-Authorization: Basic dTpw\r\n\r\n");
  ASSERT_EQ(r.status, Status::Done) << r.error;
  EXPECT_EQ(r.head.host, "example.org");
  EXPECT_EQ(r.head.port, 443);
  ASSERT_NE(r.head.header("proxy-authorization"), nullptr);
  EXPECT_EQ(*r.head.header("proxy-authorization"), "Basic dTpw");

  r = parse("CONNECT [::1]:8443 HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.status, Status::Done) << r.error;
  EXPECT_EQ(r.head.host, "::1");
  EXPECT_EQ(r.head.port, 8443);

  r = parse("CONNECT example.org HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status, Status::Error);
  EXPECT_NE(r.error.find("host:port"), std::string::npos) << r.error;
}

TEST(HttpPreread, ByteByByteThenHeadBytesExcludeTheBody) {
  std::string head = "POST /upload HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n\r\n";
  std::string wire = head + "hello";
  for (std::size_t n = 0; n < head.size(); ++n)
    ASSERT_EQ(parse(std::string_view(wire).substr(0, n)).status, Status::NeedMore) << n;
  auto r = parse(wire);
  ASSERT_EQ(r.status, Status::Done) << r.error;
  EXPECT_EQ(r.head_bytes, head.size());
  EXPECT_EQ(r.head.host, "a.example");
}

TEST(HttpPreread, CursorDripAgreesWithFreshCalls) {
  std::string head = "\r\nGET /a HTTP/1.1\r\nHost: Drip.Example:81\r\nX-A: 1\nX-B: 2\r\n\r\nbody";
  HttpCursor cursor;
  HttpPreread resumed;
  std::size_t n = 0;
  while (resumed.status == Status::NeedMore && n < head.size())
    resumed = parse_http_preread(bytes_of(std::string_view(head).substr(0, ++n)), cursor);
  auto fresh = parse(head);
  ASSERT_EQ(resumed.status, Status::Done) << resumed.error;
  EXPECT_EQ(n, head.size() - 4);
  EXPECT_EQ(resumed.head.host, "drip.example");
  EXPECT_EQ(resumed.head.port, 81);
  EXPECT_EQ(resumed.head.headers, fresh.head.headers);
  EXPECT_EQ(resumed.head_bytes, fresh.head_bytes);
}

TEST(HttpPreread, CursorStillFailsFastAndBounds) {
  std::string bad = "GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n";
  HttpCursor cursor;
  HttpPreread r;
  for (std::size_t n = 1; n <= bad.size() && r.status == Status::NeedMore; ++n)
    r = parse_http_preread(bytes_of(std::string_view(bad).substr(0, n)), cursor);
  EXPECT_EQ(r.status, Status::Error);
  EXPECT_EQ(r.error, parse(bad).error);

  std::string endless = "GET / HTTP/1.1\r\n";
  while (endless.size() < 300) endless += "X-Pad: y\r\n";
  HttpCursor bounded;
  r = {};
  for (std::size_t n = 1; n <= endless.size() && r.status == Status::NeedMore; ++n)
    r = parse_http_preread(bytes_of(std::string_view(endless).substr(0, n)), bounded, 100);
  EXPECT_EQ(r.status, Status::Error);
  EXPECT_NE(r.error.find("preread limit"), std::string::npos) << r.error;
}

TEST(HttpPreread, BareLfAndLeadingEmptyLineAccepted) {
  auto r = parse("\r\nGET / HTTP/1.1\nHost: a.example\n\n");
  ASSERT_EQ(r.status, Status::Done) << r.error;
  EXPECT_EQ(r.head.host, "a.example");
  // The CR of that leading empty line arriving alone is not yet a verdict.
  EXPECT_EQ(parse("\r").status, Status::NeedMore);
}

TEST(HttpPreread, Http10WithoutHostRoutesByDefault) {
  auto r = parse("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(r.status, Status::Done) << r.error;
  EXPECT_TRUE(r.head.host.empty());
  EXPECT_EQ(r.head.version_minor, 0);
}

TEST(HttpPreread, BadRequestsAreErrorsWithAReason) {
  struct Case {
    const char* name;
    std::string text;
    std::string reason;
  };
  std::vector<Case> cases = {
      {"1.1 without Host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", "without a Host"},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host"},
      {"bad port", "GET / HTTP/1.1\r\nHost: a.example:99999\r\n\r\n", "invalid port"},
      {"port not a number", "GET / HTTP/1.1\r\nHost: a.example:8o\r\n\r\n", "invalid port"},
      {"two trailing dots", "GET / HTTP/1.1\r\nHost: a.example..\r\n\r\n", "not a host name"},
      {"empty label", "GET / HTTP/1.1\r\nHost: a..example\r\n\r\n", "not a host name"},
      {"only a dot", "GET / HTTP/1.1\r\nHost: .:80\r\n\r\n", "not a host name"},
      {"space in host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "invalid character"},
      {"userinfo", "GET http://u@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", "invalid character"},
      {"empty URI host", "GET http:///x HTTP/1.1\r\nHost: a.example\r\n\r\n", "empty host"},
      {"bad IPv6", "GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", "not an IPv6"},
      {"IPv6 zone", "GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n", "not an IPv6"},
      {"unclosed IPv6", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", "unterminated"},
      {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/2"},
      {"HTTP/3.0", "GET / HTTP/3.0\r\n\r\n", "unsupported HTTP version"},
      {"two spaces", "GET  / HTTP/1.1\r\n\r\n", "is not 'METHOD target"},
      {"folded header", "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", "folding"},
      {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "malformed header"},
      {"CR inside value", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", "control character"},
  };
  for (const auto& c : cases) {
    auto r = parse(c.text);
    EXPECT_EQ(r.status, Status::Error) << c.name;
    EXPECT_NE(r.error.find(c.reason), std::string::npos) << c.name << ": " << r.error;
  }
}

TEST(HttpPreread, ErrorsQuoteInputAsPrintableText) {
  auto r = parse("GET / HTTP/1.1\r\nHost: a\x1b[31m\xff.example\r\n\r\n");
  ASSERT_EQ(r.status, Status::Error);
  EXPECT_NE(r.error.find("a\\x1b[31m\\xff.example"), std::string::npos) << r.error;
  r = parse("GET / HTTP/1.1\r\nHost: " + std::string(500, '!') + "\r\n\r\n");
  ASSERT_EQ(r.status, Status::Error);
  EXPECT_LT(r.error.size(), 200u);
}

TEST(HttpPreread, BinaryJunkIsRejectedBeforeALineEnds) {
  const std::uint8_t tls[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
  auto r = parse_http_preread(tls);
  EXPECT_EQ(r.status, Status::Error);
  EXPECT_NE(r.error.find("not an HTTP/1.x request line"), std::string::npos) << r.error;
}

TEST(HttpPreread, HeadLongerThanTheLimitIsAnError) {
  std::string head = "GET / HTTP/1.1\r\nHost: a.example\r\nX-Pad: " + std::string(200, 'x') + "\r\n\r\n";
  EXPECT_EQ(parse(head, head.size()).status, Status::Done);
  auto r = parse(head, head.size() - 1);
  EXPECT_EQ(r.status, Status::Error);
  EXPECT_NE(r.error.find("preread limit"), std::string::npos) << r.error;
  // An endless header line is cut off at the limit, not buffered further.
  std::string slow = "GET / HTTP/1.1\r\nX-Slow: " + std::string(300, 'y');
  EXPECT_EQ(parse(slow, 100).status, Status::Error);
  EXPECT_EQ(parse(slow.substr(0, 99), 100).status, Status::NeedMore);
}

}  // namespace
}  // namespace snigate::parser
