#include "parser/tls_client_hello.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "tls_bytes.h"

namespace snigate::parser {
namespace {

using namespace test;

Bytes hello_with(Bytes extensions) {
  HelloFields f;
  f.extensions = std::move(extensions);
  return client_hello(f);
}

Bytes typical_extensions() {
  Bytes ext;
  append(ext, extension(0x2a2a, {}));  // GREASE extension, as Chrome sends first
  append(ext, server_name_ext("WWW.Example.ORG."));
  append(ext, alpn_ext({"h2", "http/1.1"}));
  append(ext, supported_versions_ext({0x7a7a, 0x0304, 0x0303}));
  return ext;
}

TEST(TlsPreread, ReadsSniAlpnAndVersions) {
  auto r = parse_tls_preread(records(hello_with(typical_extensions())));
  ASSERT_EQ(r.status, Status::Done) << r.detail;
  EXPECT_EQ(r.hello.sni, "www.example.org");
  EXPECT_EQ(r.hello.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(r.hello.legacy_version, 0x0303);
  EXPECT_EQ(r.hello.supported_versions, (std::vector<std::uint16_t>{0x0304, 0x0303}));
  EXPECT_FALSE(r.hello.ech);
}

// QUIC's entry point: the bare handshake message, no records. Undecided until its last byte,
// then the same hello as through records; what follows the message is not read.
TEST(TlsPreread, BareHandshakeMessage) {
  Bytes msg = hello_with(typical_extensions());
  for (std::size_t n = 0; n < msg.size(); ++n)
    ASSERT_EQ(parse_client_hello_message(std::span(msg).first(n)).status, Status::NeedMore) << n;
  msg.push_back(0xff);
  auto r = parse_client_hello_message(msg);
  ASSERT_EQ(r.status, Status::Done) << r.detail;
  EXPECT_EQ(r.hello.sni, "www.example.org");
  EXPECT_EQ(r.hello.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  msg[0] = 2;
  EXPECT_EQ(parse_client_hello_message(std::span(msg).first(4)).error, TlsError::BadHandshake);
}

TEST(TlsPreread, GreaseValuesAreRecognised) {
  for (unsigned v = 0x0a0a; v <= 0xfafa; v += 0x1010) EXPECT_TRUE(is_grease(static_cast<std::uint16_t>(v)));
  EXPECT_FALSE(is_grease(0x0a1a));
  EXPECT_FALSE(is_grease(0x0304));
}

TEST(TlsPreread, EchKeepsTheOuterName) {
  Bytes ext = typical_extensions();
  append(ext, extension(0xfe0d, {0, 0, 1, 0, 1, 7, 0, 0, 0, 0}));
  auto r = parse_tls_preread(records(hello_with(ext)));
  ASSERT_EQ(r.status, Status::Done) << r.detail;
  EXPECT_TRUE(r.hello.ech);
  EXPECT_EQ(r.hello.sni, "www.example.org");
}

TEST(TlsPreread, HelloWithoutExtensionsHasNoSni) {
  HelloFields f;
  f.with_extensions = false;
  auto r = parse_tls_preread(records(client_hello(f)));
  ASSERT_EQ(r.status, Status::Done) << r.detail;
  EXPECT_TRUE(r.hello.sni.empty());
  EXPECT_TRUE(r.hello.alpn.empty());
}

TEST(TlsPreread, HelloWithoutServerNameHasNoSni) {
  auto r = parse_tls_preread(records(hello_with(alpn_ext({"h2"}))));
  ASSERT_EQ(r.status, Status::Done) << r.detail;
  EXPECT_TRUE(r.hello.sni.empty());
  EXPECT_EQ(r.hello.alpn, std::vector<std::string>{"h2"});
}

TEST(TlsPreread, SplitAcrossOneByteRecords) {
  Bytes wire = records(hello_with(typical_extensions()), 1);
  auto r = parse_tls_preread(wire);
  ASSERT_EQ(r.status, Status::Done) << r.detail;
  EXPECT_EQ(r.hello.sni, "www.example.org");
  EXPECT_EQ(r.hello.alpn.size(), 2u);
}

TEST(TlsPreread, ByteByByteNeedsMoreUntilTheLastByte) {
  for (std::size_t fragment : {std::size_t{16384}, std::size_t{7}}) {
    Bytes wire = records(hello_with(typical_extensions()), fragment);
    for (std::size_t n = 0; n < wire.size(); ++n)
      ASSERT_EQ(parse_tls_preread(std::span(wire).first(n)).status, Status::NeedMore)
          << "prefix " << n << " of " << wire.size() << ", fragment " << fragment;
    auto r = parse_tls_preread(wire);
    ASSERT_EQ(r.status, Status::Done) << r.detail;
    EXPECT_EQ(r.hello.sni, "www.example.org");
  }
}

TEST(TlsPreread, TruncatedHelloStaysIncomplete) {
  Bytes wire = records(hello_with(typical_extensions()));
  wire.resize(wire.size() - 10);
  EXPECT_EQ(parse_tls_preread(wire).status, Status::NeedMore);
}

TEST(TlsPreread, PlainTextIsNotTls) {
  auto r = parse_tls_preread(bytes_of("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(r.status, Status::Error);
  EXPECT_EQ(r.error, TlsError::NotTls);
  EXPECT_NE(r.detail.find("0x47"), std::string::npos) << r.detail;
  // One byte is enough to decide: the daemon need not wait for more.
  EXPECT_EQ(parse_tls_preread(bytes_of("G")).error, TlsError::NotTls);
}

TEST(TlsPreread, Sslv2HelloIsRejectedAsSuch) {
  // SSLv2-compatible CLIENT-HELLO (RFC 5246 E.2): 2-byte length with the high bit, type 1.
  const Bytes v2{0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10};
  auto r = parse_tls_preread(v2);
  EXPECT_EQ(r.status, Status::Error);
  EXPECT_EQ(r.error, TlsError::SslV2);
  EXPECT_EQ(parse_tls_preread(std::span(v2).first(2)).status, Status::NeedMore);
}

TEST(TlsPreread, HandshakeRecordWithWrongMajorVersionIsNotTls) {
  EXPECT_EQ(parse_tls_preread(Bytes{0x16, 0x02, 0x00}).error, TlsError::NotTls);
}

TEST(TlsPreread, OtherRecordBeforeTheHelloEndsIsBadRecord) {
  Bytes hs = hello_with(typical_extensions());
  Bytes wire = records(std::span(hs).first(20));
  append(wire, Bytes{0x17, 0x03, 0x03, 0x00, 0x01, 0x00});
  auto r = parse_tls_preread(wire);
  EXPECT_EQ(r.error, TlsError::BadRecord) << r.detail;
}

TEST(TlsPreread, EmptyAndOverlongRecordsAreBadRecords) {
  EXPECT_EQ(parse_tls_preread(Bytes{0x16, 0x03, 0x01, 0x00, 0x00}).error, TlsError::BadRecord);
  EXPECT_EQ(parse_tls_preread(Bytes{0x16, 0x03, 0x01, 0x40, 0x01}).error, TlsError::BadRecord);
}

TEST(TlsPreread, OtherHandshakeMessageIsBadHandshake) {
  Bytes hs = hello_with({});
  hs[0] = 2;  // ServerHello
  EXPECT_EQ(parse_tls_preread(records(hs)).error, TlsError::BadHandshake);
}

TEST(TlsPreread, OversizedHelloIsTooLargeAsSoonAsItsLengthIsKnown) {
  // Announces a 20000-byte hello: decided from the 9 header bytes, not after buffering.
  Bytes head{0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x4e, 0x20};
  auto r = parse_tls_preread(head);
  EXPECT_EQ(r.error, TlsError::TooLarge) << r.detail;
  EXPECT_NE(r.detail.find("16384"), std::string::npos) << r.detail;
}

TEST(TlsPreread, LimitIsTheSameWhateverTheSegmentation) {
  Bytes wire = records(hello_with(typical_extensions()));
  EXPECT_EQ(parse_tls_preread(wire, wire.size()).status, Status::Done);
  auto whole = parse_tls_preread(wire, wire.size() - 1);
  EXPECT_EQ(whole.error, TlsError::TooLarge) << whole.detail;
  TlsError first = TlsError::None;
  for (std::size_t n = 1; n <= wire.size() && first == TlsError::None; ++n)
    first = parse_tls_preread(std::span(wire).first(n), wire.size() - 1).error;
  EXPECT_EQ(first, TlsError::TooLarge);
}

TEST(TlsPreread, HelloSpanningRecordsBeyondLimitIsTooLarge) {
  Bytes wire = records(hello_with(typical_extensions()), 10);
  auto r = parse_tls_preread(wire, 100);
  EXPECT_EQ(r.error, TlsError::TooLarge) << r.detail;
}

TEST(TlsPreread, MalformedFieldsAreRejectedWithTheirReason) {
  struct Case {
    const char* name;
    Bytes hello;
    TlsError error;
  };
  HelloFields long_session;
  long_session.session_id_len = 33;
  HelloFields old_version;
  old_version.legacy_version = 0x0200;
  HelloFields no_suites;
  no_suites.cipher_suites.clear();
  Bytes trailing = hello_with(server_name_ext("a.example"));
  // One extra byte inside the body, after the extensions block.
  trailing.push_back(0);
  trailing[3] = static_cast<std::uint8_t>(trailing[3] + 1);

  Bytes dup;
  append(dup, server_name_ext("a.example"));
  append(dup, server_name_ext("b.example"));
  Bytes two_names;
  {
    Bytes entries;
    for (std::string_view h : {"a.example", "b.example"}) {
      entries.push_back(0);
      put16(entries, h.size());
      append(entries, h);
    }
    Bytes list;
    put16(list, entries.size());
    append(list, entries);
    two_names = extension(0, list);
  }
  Bytes odd_versions = extension(43, {3, 0x03, 0x04, 0x03});

  std::vector<Case> cases = {
      {"session id > 32", client_hello(long_session), TlsError::BadHandshake},
      {"legacy_version 2.0", client_hello(old_version), TlsError::BadHandshake},
      {"no cipher suites", client_hello(no_suites), TlsError::BadHandshake},
      {"bytes after extensions", trailing, TlsError::BadHandshake},
      {"duplicate extension", hello_with(dup), TlsError::BadExtension},
      {"two host_names", hello_with(two_names), TlsError::BadExtension},
      {"space in host", hello_with(server_name_ext("a b.example")), TlsError::BadExtension},
      {"NUL in host", hello_with(server_name_ext(std::string("a\0b", 3))), TlsError::BadExtension},
      {"host of only a dot", hello_with(server_name_ext(".")), TlsError::BadExtension},
      {"empty label", hello_with(server_name_ext("a..example")), TlsError::BadExtension},
      {"two trailing dots", hello_with(server_name_ext("a.example..")), TlsError::BadExtension},
      {"host of 256 bytes", hello_with(server_name_ext(std::string(256, 'a'))), TlsError::BadExtension},
      {"empty ALPN name", hello_with(alpn_ext({"h2", ""})), TlsError::BadExtension},
      {"odd supported_versions", hello_with(odd_versions), TlsError::BadExtension},
      {"extension overruns block", hello_with(Bytes{0x00, 0x10, 0x00, 0x09, 0x00}), TlsError::BadExtension},
  };
  for (const auto& c : cases) {
    auto r = parse_tls_preread(records(c.hello));
    EXPECT_EQ(r.status, Status::Error) << c.name;
    EXPECT_EQ(r.error, c.error) << c.name << ": " << r.detail;
    EXPECT_FALSE(r.detail.empty()) << c.name;
  }
}

TEST(TlsPreread, CursorGivesTheSameErrorsAsAFreshCall) {
  Bytes hs = hello_with(typical_extensions());
  Bytes wire = records(std::span(hs).first(30), 3);
  append(wire, Bytes{0x17, 0x03, 0x03, 0x00, 0x01, 0x00});
  TlsCursor cursor;
  TlsPreread resumed;
  for (std::size_t n = 1; n <= wire.size() && resumed.status == Status::NeedMore; ++n)
    resumed = parse_tls_preread(std::span(wire).first(n), cursor);
  auto fresh = parse_tls_preread(wire);
  EXPECT_EQ(resumed.error, TlsError::BadRecord);
  EXPECT_EQ(resumed.detail, fresh.detail);
  EXPECT_NE(fresh.detail.find("record 11 "), std::string::npos) << fresh.detail;

  // The size limit holds the same way.
  Bytes big = records(hello_with(typical_extensions()), 4);
  TlsCursor limited;
  TlsError first = TlsError::None;
  for (std::size_t n = 1; n <= big.size() && first == TlsError::None; ++n)
    first = parse_tls_preread(std::span(big).first(n), limited, 60).error;
  EXPECT_EQ(first, TlsError::TooLarge);
}

TEST(TlsPreread, HostOf255BytesIsAccepted) {
  std::string host(251, 'a');
  host += ".org";
  auto r = parse_tls_preread(records(hello_with(server_name_ext(host))));
  ASSERT_EQ(r.status, Status::Done) << r.detail;
  EXPECT_EQ(r.hello.sni, host);
}

TEST(TlsPreread, ErrorNamesAreDistinct) {
  std::vector<std::string> names;
  for (auto e : {TlsError::None, TlsError::NotTls, TlsError::SslV2, TlsError::BadRecord, TlsError::BadHandshake,
                 TlsError::BadExtension, TlsError::TooLarge}) {
    std::string n = to_string(e);
    EXPECT_EQ(std::count(names.begin(), names.end(), n), 0) << n;
    names.push_back(n);
  }
}

}  // namespace
}  // namespace snigate::parser
