// Real ClientHellos captured from openssl, curl and chromium (tests/data/hellos/README.md),
// parsed whole, byte by byte, and re-framed into many small records.
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "parser/tls_client_hello.h"
#include "tls_bytes.h"

namespace snigate::parser {
namespace {

using namespace test;

struct Capture {
  const char* file;
  std::string sni;
  std::vector<std::string> alpn;
  std::vector<std::uint16_t> supported_versions;
  bool ech;
  std::size_t records;  // as the client framed it
};

// Expected values come from each capture's command line (README.md): the -servername,
// -alpn and -tls1_x options, curl's and chromium's documented defaults.
const std::vector<Capture> kCaptures = {
    {"openssl-tls12.bin", "tls12.example.org", {"http/1.1"}, {}, false, 1},
    {"openssl-tls13.bin", "tls13.example.org", {"h2", "http/1.1"}, {0x0304}, false, 1},
    {"openssl-nosni.bin", "", {}, {0x0304, 0x0303, 0x0302, 0x0301}, false, 1},
    {"openssl-fragmented.bin", "frag.example.org", {}, {0x0304, 0x0303, 0x0302, 0x0301}, false, 3},
    {"curl.bin", "curl.example.org", {"h2", "http/1.1"}, {0x0304, 0x0303, 0x0302, 0x0301}, false, 1},
    {"chromium.bin", "sg-test.example", {"h2", "http/1.1"}, {0x0304, 0x0303}, true, 1},
    // TLS 1.3 resumption with 0-RTT: the hello, then a ChangeCipherSpec and an early data
    // record that the daemon must replay untouched.
    {"openssl-early-data.bin", "early.example", {}, {0x0304, 0x0303, 0x0302, 0x0301}, false, 3},
};

void PrintTo(const Capture& c, std::ostream* os) { *os << c.file; }

Bytes load(const char* file) {
  std::ifstream in(std::string(SNIGATE_HELLOS_DIR) + "/" + file, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

// Where the handshake records end: anything after them (early data) is not the hello's.
std::size_t hello_end(const Bytes& wire) {
  std::size_t pos = 0;
  while (pos + 5 <= wire.size() && wire[pos] == 0x16) pos += 5 + (wire[pos + 3] << 8 | wire[pos + 4]);
  return pos;
}

std::size_t count_records(const Bytes& wire) {
  std::size_t n = 0;
  for (std::size_t pos = 0; pos + 5 <= wire.size(); pos += 5 + (wire[pos + 3] << 8 | wire[pos + 4])) ++n;
  return n;
}

void expect_hello(const Capture& c, const TlsPreread& r, const std::string& how) {
  ASSERT_EQ(r.status, Status::Done) << c.file << " " << how << ": " << r.detail;
  EXPECT_EQ(r.hello.sni, c.sni) << c.file << " " << how;
  if (std::string(c.file) == "openssl-fragmented.bin") {
    // 42 protocols, to push the hello past 3 records of 512 bytes.
    ASSERT_EQ(r.hello.alpn.size(), 42u) << how;
    EXPECT_EQ(r.hello.alpn.front(), "h2");
    EXPECT_EQ(r.hello.alpn.back(), "proto-40-xxxxxxxxxxxx");
  } else {
    EXPECT_EQ(r.hello.alpn, c.alpn) << c.file << " " << how;
  }
  EXPECT_EQ(r.hello.legacy_version, 0x0303) << c.file << " " << how;
  EXPECT_EQ(r.hello.supported_versions, c.supported_versions) << c.file << " " << how;
  EXPECT_EQ(r.hello.ech, c.ech) << c.file << " " << how;
}

class HelloCapture : public testing::TestWithParam<Capture> {};

TEST_P(HelloCapture, Whole) {
  const auto& c = GetParam();
  Bytes wire = load(c.file);
  ASSERT_GT(wire.size(), 100u) << c.file << " missing or empty";
  EXPECT_EQ(count_records(wire), c.records);
  expect_hello(c, parse_tls_preread(wire), "whole");
}

TEST_P(HelloCapture, ByteByByte) {
  const auto& c = GetParam();
  Bytes wire = load(c.file);
  std::size_t end = hello_end(wire);
  for (std::size_t n = 0; n < end; ++n)
    ASSERT_EQ(parse_tls_preread(std::span(wire).first(n)).status, Status::NeedMore)
        << c.file << " decided after " << n << " of " << end << " bytes";
  // Decided with the hello's last byte; whatever follows changes nothing.
  for (std::size_t n = end; n <= wire.size(); ++n)
    expect_hello(c, parse_tls_preread(std::span(wire).first(n)), "after " + std::to_string(n) + " bytes");
}

TEST_P(HelloCapture, DrippedInOneByteRecordsWithACursor) {
  const auto& c = GetParam();
  Bytes wire = load(c.file);
  Bytes tiny = records(unframe(std::span(wire).first(hello_end(wire))), 1, 0x03);
  TlsCursor cursor;
  for (std::size_t n = 1; n < tiny.size(); ++n)
    ASSERT_EQ(parse_tls_preread(std::span(tiny).first(n), cursor).status, Status::NeedMore) << n;
  // The cursor stopped at the last complete record, not at the start.
  EXPECT_EQ(cursor.pos, tiny.size() - 6);
  expect_hello(c, parse_tls_preread(tiny, cursor), "dripped with a cursor");
}

TEST_P(HelloCapture, ReframedIntoManyRecords) {
  const auto& c = GetParam();
  Bytes wire = load(c.file);
  Bytes handshake = unframe(std::span(wire).first(hello_end(wire)));
  for (std::size_t fragment : {1, 3, 100, 512}) {
    Bytes wire = records(handshake, fragment, 0x03);
    ASSERT_GE(count_records(wire), handshake.size() / fragment);
    expect_hello(c, parse_tls_preread(wire), "in records of " + std::to_string(fragment));
  }
}

TEST_P(HelloCapture, OneByteOverTheLimitIsTooLarge) {
  const auto& c = GetParam();
  Bytes wire = load(c.file);
  std::size_t end = hello_end(wire);
  EXPECT_EQ(parse_tls_preread(wire, end).status, Status::Done);
  EXPECT_EQ(parse_tls_preread(wire, end - 1).error, TlsError::TooLarge);
}

INSTANTIATE_TEST_SUITE_P(Captures, HelloCapture, testing::ValuesIn(kCaptures),
                         [](const testing::TestParamInfo<Capture>& info) {
                           std::string name = info.param.file;
                           name = name.substr(0, name.find('.'));
                           for (char& ch : name)
                             if (ch == '-') ch = '_';
                           return name;
                         });

}  // namespace
}  // namespace snigate::parser
