// The QUIC Initial reader: the RFC 9001 and RFC 9369 example packets, real Initials captured
// from ngtcp2's gtlsclient (tests/data/quic/README.md), and packets built by quic_packets.h
// for what the captures do not show: hellos over three packets, reordered and coalesced
// packets, broken ones.
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>

#include "parser/quic_initial.h"
#include "parser/quic_initial_crypto.h"
#include "quic_packets.h"

namespace snigate::parser::quic {
namespace {

using namespace test;

Bytes load(const std::string& file) {
  std::ifstream in(std::string(SNIGATE_QUIC_DIR) + "/" + file, std::ios::binary);
  Bytes b(std::istreambuf_iterator<char>(in), {});
  EXPECT_FALSE(b.empty()) << file;
  return b;
}

Bytes hex(std::string_view h) {
  Bytes out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  return out;
}

const Bytes kRfcDcid = hex("8394c8f03e515708");

// A ClientHello of about `size` bytes (a padding extension, RFC 7685, makes up the rest).
Bytes hello(std::string_view sni, std::size_t size) {
  HelloFields f;
  f.extensions = server_name_ext(sni);
  append(f.extensions, alpn_ext({"h3"}));
  append(f.extensions, supported_versions_ext({0x0304}));
  Bytes without = client_hello(f);
  if (size > without.size() + 4) append(f.extensions, extension(21, Bytes(size - without.size() - 4, 0)));
  return client_hello(f);
}

Bytes part(const Bytes& b, std::size_t from, std::size_t to) {
  return Bytes(b.begin() + static_cast<std::ptrdiff_t>(from), b.begin() + static_cast<std::ptrdiff_t>(std::min(to, b.size())));
}

void expect_done(const QuicPreread& r, std::string_view sni, std::vector<std::string> alpn) {
  ASSERT_EQ(r.status, Status::Done) << to_string(r.error) << ": " << r.detail;
  EXPECT_EQ(r.hello.sni, sni);
  EXPECT_EQ(r.hello.alpn, alpn);
  EXPECT_EQ(r.hello.supported_versions, std::vector<std::uint16_t>{0x0304});
}

void expect_error(const QuicPreread& r, QuicError error, std::string_view detail_part) {
  ASSERT_EQ(r.status, Status::Error) << "expected " << to_string(error);
  EXPECT_EQ(r.error, error) << r.detail;
  EXPECT_NE(r.detail.find(detail_part), std::string::npos) << r.detail;
}

// ---- RFC vectors ----

TEST(QuicKeys, Rfc9001AppendixA1ClientKeys) {
  auto keys = client_initial_keys(kVersion1, kRfcDcid);
  ASSERT_TRUE(keys);
  EXPECT_EQ(Bytes(keys->key.begin(), keys->key.end()), hex("1f369613dd76d5467730efcbe3b1a22d"));
  EXPECT_EQ(Bytes(keys->iv.begin(), keys->iv.end()), hex("fa044b2f42a3fd3b46fb255c"));
  EXPECT_EQ(Bytes(keys->hp.begin(), keys->hp.end()), hex("9f50449e04a0e810283a1e9933adedd2"));
}

TEST(QuicKeys, Rfc9369AppendixA1ClientKeys) {
  auto keys = client_initial_keys(kVersion2, kRfcDcid);
  ASSERT_TRUE(keys);
  EXPECT_EQ(Bytes(keys->key.begin(), keys->key.end()), hex("8b1a0bc121284290a29e0971b5cd045d"));
  EXPECT_EQ(Bytes(keys->iv.begin(), keys->iv.end()), hex("91f73e2351d8fa91660e909f"));
  EXPECT_EQ(Bytes(keys->hp.begin(), keys->hp.end()), hex("45b95e15235d6f45a6b19cbcb0294ba9"));
}

TEST(QuicKeys, OtherVersionsHaveNone) { EXPECT_FALSE(client_initial_keys(0xff00001d, kRfcDcid)); }

// RFC 9001 A.2 and RFC 9369 A.2: the same ClientHello (SNI example.com, ALPN "alpn"), packet
// number 2, padded to 1200 bytes.
TEST(QuicInitial, Rfc9001AppendixA2ClientInitial) {
  Bytes d = load("rfc9001-a2-client-initial.bin");
  auto h = peek_long_header(d);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->version, kVersion1);
  EXPECT_TRUE(h->initial);
  EXPECT_EQ(Bytes(h->dcid.begin(), h->dcid.end()), kRfcDcid);
  EXPECT_TRUE(h->scid.empty());
  InitialReader reader;
  expect_done(reader.feed(d), "example.com", {"alpn"});
}

TEST(QuicInitial, Rfc9369AppendixA2ClientInitial) {
  Bytes d = load("rfc9369-a2-client-initial.bin");
  auto h = peek_long_header(d);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->version, kVersion2);
  EXPECT_TRUE(h->initial);
  InitialReader reader;
  expect_done(reader.feed(d), "example.com", {"alpn"});
}

// ---- real clients ----

TEST(QuicInitial, GtlsclientOnePacket) {
  InitialReader reader;
  expect_done(reader.feed(load("gtlsclient-v1-1.bin")), "v1.example.org", {"h3"});
}

// FFDHE8192's 1 KB key share makes gtlsclient's hello span two Initial packets.
TEST(QuicInitial, GtlsclientTwoPackets) {
  Bytes first = load("gtlsclient-ffdhe-1.bin"), second = load("gtlsclient-ffdhe-2.bin");
  InitialReader reader;
  auto r = reader.feed(first);
  EXPECT_EQ(r.status, Status::NeedMore) << r.detail;
  expect_done(reader.feed(second), "ffdhe.example.org", {"h3"});
}

TEST(QuicInitial, GtlsclientTwoPacketsReordered) {
  InitialReader reader;
  auto r = reader.feed(load("gtlsclient-ffdhe-2.bin"));
  EXPECT_EQ(r.status, Status::NeedMore) << r.detail;
  expect_done(reader.feed(load("gtlsclient-ffdhe-1.bin")), "ffdhe.example.org", {"h3"});
}

// A resumption with early data: the Initial (712 bytes) and a 0-RTT packet in one datagram.
TEST(QuicInitial, GtlsclientInitialCoalescedWithZeroRtt) {
  InitialReader reader;
  expect_done(reader.feed(load("gtlsclient-0rtt-1.bin")), "early.example.org", {"h3"});
}

// ---- built packets: several per hello, reordered, coalesced ----

PacketSpec spec(std::uint64_t pn, std::uint32_t version = kVersion1) {
  PacketSpec s;
  s.version = version;
  s.type_bits = version == kVersion2 ? 1 : 0;
  s.packet_number = pn;
  return s;
}

TEST(QuicInitial, HelloOverThreePacketsAnyOrder) {
  Bytes ch = hello("three.example", 3000);
  std::vector<Bytes> d;
  for (std::size_t i = 0; i < 3; ++i)
    d.push_back(protected_packet(spec(i), crypto_frame(i * 1100, part(ch, i * 1100, (i + 1) * 1100))));
  for (auto order : {std::array{0, 1, 2}, std::array{2, 0, 1}, std::array{1, 2, 0}}) {
    InitialReader reader;
    EXPECT_EQ(reader.feed(d[order[0]]).status, Status::NeedMore);
    EXPECT_EQ(reader.feed(d[order[1]]).status, Status::NeedMore);
    expect_done(reader.feed(d[order[2]]), "three.example", {"h3"});
  }
}

TEST(QuicInitial, HelloOverTwoV2Packets) {
  Bytes ch = hello("two.example", 1500);
  InitialReader reader;
  EXPECT_EQ(reader.feed(protected_packet(spec(0, kVersion2), crypto_frame(0, part(ch, 0, 1000)))).status,
            Status::NeedMore);
  expect_done(reader.feed(protected_packet(spec(1, kVersion2), crypto_frame(1000, part(ch, 1000, 1500)))),
              "two.example", {"h3"});
}

TEST(QuicInitial, CryptoFramesReorderedInOnePacket) {
  Bytes ch = hello("frames.example", 600);
  Bytes frames = concat({crypto_frame(400, part(ch, 400, 600)), crypto_frame(0, part(ch, 0, 100)),
                         crypto_frame(200, part(ch, 200, 400)), crypto_frame(100, part(ch, 100, 200))});
  InitialReader reader;
  expect_done(reader.feed(protected_packet(spec(0), frames)), "frames.example", {"h3"});
}

TEST(QuicInitial, PaddingPingAckSkipped) {
  Bytes ch = hello("skip.example", 300);
  Bytes ack{0x03, 0x05, 0x00, 0x01, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00};  // ECN ACK with one range
  Bytes frames = concat({Bytes{0x00, 0x00, 0x01}, ack, crypto_frame(0, ch), Bytes{0x01, 0x02, 0x00, 0x00, 0x00, 0x00}});
  InitialReader reader;
  expect_done(reader.feed(protected_packet(spec(0), frames)), "skip.example", {"h3"});
}

TEST(QuicInitial, CoalescedInitialsInOneDatagram) {
  Bytes ch = hello("coalesced.example", 900);
  Bytes d = concat({protected_packet(spec(0), crypto_frame(500, part(ch, 500, 900)), 600),
                    protected_packet(spec(1), crypto_frame(0, part(ch, 0, 500)), 600)});
  InitialReader reader;
  expect_done(reader.feed(d), "coalesced.example", {"h3"});
}

// RFC 9000 12.2: 0-RTT may follow the Initial in a datagram or come in its own; zero bytes
// may pad the datagram after the last packet. None of them stops the hello.
TEST(QuicInitial, ZeroRttAndTrailingZerosSkipped) {
  Bytes ch = hello("early.example", 1500);
  PacketSpec zero_rtt = spec(0);
  zero_rtt.type_bits = 1;
  Bytes first = concat({protected_packet(spec(0), crypto_frame(0, part(ch, 0, 1000)), 1100),
                        protected_packet(zero_rtt, Bytes{0x01}, 80), Bytes(100, 0)});
  InitialReader reader;
  EXPECT_EQ(reader.feed(first).status, Status::NeedMore) << reader.feed(first).detail;
  EXPECT_EQ(reader.feed(protected_packet(zero_rtt, Bytes{0x01}, 1200)).status, Status::NeedMore);
  expect_done(reader.feed(protected_packet(spec(1), crypto_frame(1000, part(ch, 1000, 1500)))), "early.example",
              {"h3"});
}

TEST(QuicInitial, RetransmittedCryptoDataAccepted) {
  Bytes ch = hello("again.example", 1500);
  InitialReader reader;
  auto first = protected_packet(spec(0), crypto_frame(0, part(ch, 0, 1000)));
  EXPECT_EQ(reader.feed(first).status, Status::NeedMore);
  EXPECT_EQ(reader.feed(protected_packet(spec(1), crypto_frame(0, part(ch, 0, 1000)))).status, Status::NeedMore);
  expect_done(reader.feed(protected_packet(spec(2), crypto_frame(900, part(ch, 900, 1500)))), "again.example",
              {"h3"});
}

// ---- broken and refused ----

TEST(QuicInitial, DifferentBytesForTheSameOffsetRefused) {
  Bytes ch = hello("one.example", 1500), other = hello("two.example", 1500);
  InitialReader reader;
  EXPECT_EQ(reader.feed(protected_packet(spec(0), crypto_frame(0, part(ch, 0, 1000)))).status, Status::NeedMore);
  expect_error(reader.feed(protected_packet(spec(1), crypto_frame(0, part(other, 0, 1500)))), QuicError::BadFrame,
               "differs from an earlier copy");
}

TEST(QuicInitial, TruncatedDatagram) {
  Bytes d = load("rfc9001-a2-client-initial.bin");
  InitialReader reader;
  expect_error(reader.feed(part(d, 0, 1000)), QuicError::BadPacket, "at least 1200");
  InitialReader header_only;
  expect_error(header_only.feed(part(d, 0, 12)), QuicError::BadPacket, "long header truncated");
}

// Found by the fuzzer: a header cut inside the version must not be read from the bytes after.
TEST(QuicInitial, HeaderCutInTheVersion) {
  Bytes d{0xf8, 0x00, 0x01, 0x00};
  EXPECT_FALSE(peek_long_header(d));
  InitialReader reader;
  expect_error(reader.feed(d), QuicError::BadPacket, "long header truncated");
}

TEST(QuicInitial, TruncatedCoalescedPacket) {
  Bytes second = protected_packet(spec(1), Bytes{0x01}, 600);
  Bytes d = concat({protected_packet(spec(0), Bytes{0x01}, 1100), part(second, 0, 300)});
  InitialReader reader;
  expect_error(reader.feed(d), QuicError::BadPacket, "overruns");
}

TEST(QuicInitial, BadTagIsADecryptError) {
  Bytes d = load("rfc9001-a2-client-initial.bin");
  d.back() ^= 0x01;
  InitialReader reader;
  expect_error(reader.feed(d), QuicError::Decrypt, "AEAD tag does not verify");
}

TEST(QuicInitial, WrongDestinationConnectionIdIsADecryptError) {
  Bytes d = load("rfc9001-a2-client-initial.bin");
  d[6] ^= 0x01;  // first DCID byte: other keys
  InitialReader reader;
  expect_error(reader.feed(d), QuicError::Decrypt, "AEAD tag does not verify");
}

TEST(QuicInitial, FirstPacketNotInitial) {
  PacketSpec handshake = spec(0);
  handshake.type_bits = 2;
  InitialReader reader;
  expect_error(reader.feed(protected_packet(handshake, Bytes{0x01})), QuicError::NotInitial, "Handshake packet");
  PacketSpec zero_rtt = spec(0);
  zero_rtt.type_bits = 1;
  InitialReader early;
  expect_error(early.feed(protected_packet(zero_rtt, Bytes{0x01})), QuicError::NotInitial, "0-RTT packet");
  auto peeked = peek_long_header(protected_packet(zero_rtt, Bytes{0x01}));
  ASSERT_TRUE(peeked);
  EXPECT_FALSE(peeked->initial);
}

TEST(QuicInitial, ShortHeaderIsNotQuic) {
  Bytes d(1200, 0x40);
  EXPECT_FALSE(peek_long_header(d));
  InitialReader reader;
  expect_error(reader.feed(d), QuicError::NotQuic, "not a long header");
}

TEST(QuicInitial, UnknownVersionRefusedButPeeked) {
  Bytes d = load("rfc9001-a2-client-initial.bin");
  d[1] = 0xff, d[2] = 0x00, d[3] = 0x00, d[4] = 0x1d;  // draft-29
  auto h = peek_long_header(d);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->version, 0xff00001du);
  EXPECT_FALSE(h->initial);
  EXPECT_EQ(Bytes(h->dcid.begin(), h->dcid.end()), kRfcDcid);
  InitialReader reader;
  expect_error(reader.feed(d), QuicError::UnsupportedVersion, "0xff00001d");
}

TEST(QuicInitial, TooManyPackets) {
  Bytes ch = hello("many.example", 3000);
  InitialReader reader({.max_packets = 2});
  EXPECT_EQ(reader.feed(protected_packet(spec(0), crypto_frame(0, part(ch, 0, 1100)))).status, Status::NeedMore);
  expect_error(reader.feed(protected_packet(spec(1), crypto_frame(1100, part(ch, 1100, 2200)))),
               QuicError::TooManyPackets, "after 2 Initial packets");
}

TEST(QuicInitial, TooLarge) {
  Bytes ch = hello("large.example", 3000);
  InitialReader reader({.max_crypto_bytes = 2000});
  // Decided by the hello's length field, before the rest arrives.
  expect_error(reader.feed(protected_packet(spec(0), crypto_frame(0, part(ch, 0, 1000)))), QuicError::TooLarge,
               "ClientHello of 3000 bytes");
  InitialReader far({.max_crypto_bytes = 2000});
  expect_error(far.feed(protected_packet(spec(0), crypto_frame(1900, part(ch, 1900, 2200)))), QuicError::TooLarge,
               "up to byte 2200");
}

TEST(QuicInitial, OtherFramesRefused) {
  InitialReader stream;
  expect_error(stream.feed(protected_packet(spec(0), Bytes{0x08, 0x00, 0x01, 0x41})), QuicError::BadFrame,
               "frame type 0x08");
  InitialReader close;
  expect_error(close.feed(protected_packet(spec(0), Bytes{0x1c, 0x00, 0x00, 0x00})), QuicError::BadFrame,
               "CONNECTION_CLOSE");
}

TEST(QuicInitial, NotAClientHello) {
  Bytes server_hello = hello("x.example", 200);
  server_hello[0] = 2;
  InitialReader reader;
  expect_error(reader.feed(protected_packet(spec(0), crypto_frame(0, server_hello))), QuicError::BadHello,
               "expected ClientHello");
}

TEST(QuicInitial, LaterDatagramForAnotherConnection) {
  Bytes ch = hello("cid.example", 1500);
  InitialReader reader;
  EXPECT_EQ(reader.feed(protected_packet(spec(0), crypto_frame(0, part(ch, 0, 1000)))).status, Status::NeedMore);
  PacketSpec other = spec(1);
  other.dcid = Bytes(8, 0x11);
  expect_error(reader.feed(protected_packet(other, crypto_frame(1000, part(ch, 1000, 1500)))), QuicError::BadPacket,
               "Destination Connection ID differs");
}

TEST(QuicInitial, VerdictKept) {
  InitialReader reader;
  expect_done(reader.feed(load("rfc9001-a2-client-initial.bin")), "example.com", {"alpn"});
  expect_done(reader.feed(Bytes(1200, 0x40)), "example.com", {"alpn"});
}

}  // namespace
}  // namespace snigate::parser::quic
