// libFuzzer target for the HTTP/1.x request-head preread.
#include <algorithm>

#include <boost/asio/ip/address_v6.hpp>

#include "fuzz_check.h"
#include "parser/http_host.h"

using namespace snigate::parser;

namespace {

void check(const HttpPreread& r, std::span<const std::uint8_t> in, std::size_t max_bytes) {
  if (r.status == Status::Error) FUZZ_REQUIRE(!r.error.empty() && printable(r.error));
  if (r.status != Status::Done) return;
  FUZZ_REQUIRE(r.head_bytes > 0 && r.head_bytes <= in.size() && r.head_bytes <= max_bytes);
  FUZZ_REQUIRE(in[r.head_bytes - 1] == '\n');
  const auto& h = r.head;
  FUZZ_REQUIRE(!h.method.empty() && !h.target.empty());
  FUZZ_REQUIRE(std::none_of(h.host.begin(), h.host.end(), [](char c) { return c >= 'A' && c <= 'Z'; }));
  FUZZ_REQUIRE(h.host.empty() || h.host.back() != '.');
  if (h.host.find(':') != std::string::npos) {
    boost::system::error_code ec;
    boost::asio::ip::make_address_v6(h.host, ec);
    FUZZ_REQUIRE(!ec);  // only an IPv6 literal may hold a colon: the port was stripped
  }
  if (h.method == "CONNECT") FUZZ_REQUIRE(!h.host.empty() && h.port);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  auto full = parse_http_preread(in);
  check(full, in, 8192);

  std::size_t cut = size == 0 ? 0 : (data[size - 1] * 257u + size / 2) % (size + 1);
  auto part = parse_http_preread(in.first(cut));
  check(part, in.first(cut), 8192);
  if (part.status != Status::NeedMore) {
    FUZZ_REQUIRE(part.status == full.status);
    if (part.status == Status::Done)
      FUZZ_REQUIRE(part.head_bytes == full.head_bytes && part.head.host == full.head.host &&
                   part.head.port == full.head.port);
  }

  std::size_t limit = size == 0 ? 1 : std::min<std::size_t>(1 + (data[0] * 31u) % (size + 8), 8192);
  auto limited = parse_http_preread(in, limit);
  check(limited, in, limit);
  if (limited.status == Status::Done)
    FUZZ_REQUIRE(full.status == Status::Done && limited.head.host == full.head.host &&
                 limited.head_bytes == full.head_bytes);
  // Re-calls with a cursor, as the daemon makes them while bytes arrive, agree with fresh calls.
  HttpCursor cursor;
  for (std::size_t end = 0, step = 1; end < size; step = step * 3 % 61 + 1) {
    end = std::min(size, end + step);
    auto resumed = parse_http_preread(in.first(end), cursor);
    auto fresh = parse_http_preread(in.first(end));
    FUZZ_REQUIRE(resumed.status == fresh.status && resumed.error == fresh.error);
    if (fresh.status == Status::Done)
      FUZZ_REQUIRE(resumed.head_bytes == fresh.head_bytes && resumed.head.host == fresh.head.host &&
                   resumed.head.port == fresh.head.port && resumed.head.headers == fresh.head.headers &&
                   resumed.head.target == fresh.head.target);
    if (fresh.status != Status::NeedMore) break;
  }
  return 0;
}
