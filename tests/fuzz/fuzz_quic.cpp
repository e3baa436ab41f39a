// libFuzzer target for the QUIC Initial reader. Every input is read twice:
// - as datagrams off the wire (1200-byte slices, as the captures come): headers, versions,
//   lengths, header protection and the AEAD check meet hostile bytes;
// - as the plaintext frames of 1-4 Initial packets the harness protects itself (first byte:
//   packet count, 0x80 = coalesced into one datagram), so frame parsing, CRYPTO reassembly
//   and the hello behind it are reached, which random ciphertext never would.
#include <algorithm>

#include "fuzz_check.h"
#include "parser/quic_initial.h"
#include "quic_packets.h"

using namespace snigate::parser;
using namespace snigate::parser::quic;

namespace {

void check(const QuicPreread& r) {
  if (r.status != Status::Error) FUZZ_REQUIRE(r.error == QuicError::None);
  if (r.status == Status::Error) FUZZ_REQUIRE(r.error != QuicError::None && !r.detail.empty() && printable(r.detail));
  if (r.status != Status::Done) return;
  const auto& h = r.hello;
  FUZZ_REQUIRE(h.sni.size() <= 255);
  FUZZ_REQUIRE(std::all_of(h.sni.begin(), h.sni.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
  }));
  FUZZ_REQUIRE(h.legacy_version >> 8 == 3);
}

bool same(const QuicPreread& a, const QuicPreread& b) {
  return a.status == b.status && a.error == b.error && a.detail == b.detail && a.hello.sni == b.hello.sni &&
         a.hello.alpn == b.hello.alpn && a.hello.supported_versions == b.hello.supported_versions;
}

// Feeds the datagrams to a reader with the default limits and to one with smaller limits: a
// smaller limit only ever turns a verdict into TooLarge or TooManyPackets.
void run(const std::vector<test::Bytes>& datagrams, std::uint8_t knob) {
  InitialReader full;
  InitialReader limited({.max_packets = 1u + knob % 4, .max_crypto_bytes = 64u + knob * 37u});
  QuicPreread a, b;
  for (const auto& d : datagrams) {
    if (a.status == Status::NeedMore) check(a = full.feed(d));
    if (b.status == Status::NeedMore) check(b = limited.feed(d));
  }
  if (b.status == Status::Done) FUZZ_REQUIRE(same(a, b));
  if (a.status == Status::Done && b.status != Status::Done)
    FUZZ_REQUIRE(b.status == Status::NeedMore || b.error == QuicError::TooLarge ||
                 b.error == QuicError::TooManyPackets);
  // A verdict is kept, whatever comes after.
  if (a.status != Status::NeedMore) FUZZ_REQUIRE(same(full.feed(datagrams.front()), a));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::span<const std::uint8_t> in(data, size);

  std::vector<test::Bytes> wire;
  for (std::size_t pos = 0; pos < size; pos += 1200) {
    auto d = in.subspan(pos, std::min<std::size_t>(1200, size - pos));
    wire.emplace_back(d.begin(), d.end());
    if (auto h = peek_long_header(d)) FUZZ_REQUIRE(h->dcid.size() <= 255 && h->scid.size() <= 255);
  }
  run(wire, data[size - 1]);

  std::size_t packets = 1 + (data[0] & 3);
  bool coalesced = data[0] & 0x80;
  auto frames = in.subspan(1);
  std::size_t chunk = (frames.size() + packets - 1) / packets;
  std::vector<test::Bytes> built;
  test::Bytes joined;
  for (std::size_t i = 0; i < packets; ++i) {
    test::PacketSpec spec;
    spec.packet_number = i;
    auto part = frames.subspan(std::min(frames.size(), i * chunk));
    part = part.first(std::min(part.size(), chunk));
    auto packet = test::protected_packet(spec, test::Bytes(part.begin(), part.end()), coalesced ? 0 : 1200);
    if (coalesced)
      test::append(joined, packet);
    else
      built.push_back(std::move(packet));
  }
  if (coalesced) {
    joined.resize(std::max<std::size_t>(joined.size(), 1200), 0);
    built.push_back(std::move(joined));
  }
  run(built, data[0]);
  return 0;
}
