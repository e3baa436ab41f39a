// libFuzzer target for the TLS ClientHello preread.
#include <algorithm>

#include "fuzz_check.h"
#include "parser/tls_client_hello.h"

using namespace snigate::parser;

namespace {

void check(const TlsPreread& r, std::size_t max_bytes, std::size_t size) {
  if (r.status != Status::Error) FUZZ_REQUIRE(r.error == TlsError::None);
  if (r.status == Status::Error) FUZZ_REQUIRE(r.error != TlsError::None && !r.detail.empty() && printable(r.detail));
  if (r.status != Status::Done) return;
  FUZZ_REQUIRE(size >= 9 + 38 && max_bytes >= 9 + 38);  // record + handshake headers + fixed fields
  const auto& h = r.hello;
  FUZZ_REQUIRE(h.sni.size() <= 255);
  FUZZ_REQUIRE(h.sni.empty() || (h.sni.back() != '.' && h.sni.front() != '.'));
  FUZZ_REQUIRE(std::all_of(h.sni.begin(), h.sni.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
  }));
  FUZZ_REQUIRE(h.legacy_version >> 8 == 3);
  for (const auto& a : h.alpn) FUZZ_REQUIRE(!a.empty() && a.size() <= 255);
  for (auto v : h.supported_versions) FUZZ_REQUIRE(!is_grease(v));
}

bool same_hello(const ClientHello& a, const ClientHello& b) {
  return a.sni == b.sni && a.alpn == b.alpn && a.legacy_version == b.legacy_version &&
         a.supported_versions == b.supported_versions && a.ech == b.ech;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  auto full = parse_tls_preread(in);
  check(full, 16384, size);

  // The daemon stops at the first verdict: a prefix that decides must decide as the whole does.
  std::size_t cut = size == 0 ? 0 : (data[size - 1] * 257u + size / 2) % (size + 1);
  auto part = parse_tls_preread(in.first(cut));
  check(part, 16384, cut);
  if (part.status != Status::NeedMore) {
    FUZZ_REQUIRE(part.status == full.status && part.error == full.error);
    if (part.status == Status::Done) FUZZ_REQUIRE(same_hello(part.hello, full.hello));
  }

  // A smaller limit only ever turns a verdict into TooLarge.
  std::size_t limit = size == 0 ? 0 : std::min<std::size_t>((data[0] * 31u) % (size + 8), 16384);
  auto limited = parse_tls_preread(in, limit);
  check(limited, limit, size);
  if (limited.status == Status::Done) FUZZ_REQUIRE(full.status == Status::Done && same_hello(limited.hello, full.hello));
  if (full.status == Status::Done && limited.status != Status::Done)
    FUZZ_REQUIRE(limited.error == TlsError::TooLarge);
  // Re-calls with a cursor, as the daemon makes them while bytes arrive, agree with fresh calls.
  TlsCursor cursor;
  for (std::size_t end = 0, step = 1; end < size; step = step * 3 % 61 + 1) {
    end = std::min(size, end + step);
    auto resumed = parse_tls_preread(in.first(end), cursor);
    auto fresh = parse_tls_preread(in.first(end));
    FUZZ_REQUIRE(resumed.status == fresh.status && resumed.error == fresh.error && resumed.detail == fresh.detail);
    if (fresh.status == Status::Done) FUZZ_REQUIRE(same_hello(resumed.hello, fresh.hello));
    if (fresh.status != Status::NeedMore) break;
  }
  return 0;
}
