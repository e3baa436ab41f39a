// libFuzzer target for the PROXY protocol decoder, checked against the encoders.
#include "fuzz_check.h"
#include "parser/proxy_protocol.h"

using namespace snigate::parser;

namespace {

bool v4_mapped(const boost::asio::ip::tcp::endpoint& e) {
  return e.address().is_v6() && e.address().to_v6().is_v4_mapped();
}

void check(const ProxyDecode& d, std::span<const std::uint8_t> in) {
  if (d.status == Status::Error) FUZZ_REQUIRE(!d.error.empty() && printable(d.error));
  if (d.status != Status::Done) return;
  const auto& h = d.header;
  FUZZ_REQUIRE(d.consumed > 0 && d.consumed <= in.size());
  if (h.version == 1) {
    FUZZ_REQUIRE(d.consumed <= 107 && in[d.consumed - 2] == '\r' && in[d.consumed - 1] == '\n');
    FUZZ_REQUIRE(!h.authority && !h.alpn);
  } else {
    FUZZ_REQUIRE(h.version == 2 && d.consumed >= 16);
    FUZZ_REQUIRE(d.consumed == 16u + (in[14] << 8 | in[15]));
  }
  if (h.local) return;
  FUZZ_REQUIRE(h.source.address().is_v4() == h.destination.address().is_v4());
  if (v4_mapped(h.source) || v4_mapped(h.destination)) return;  // the encoders unmap these

  // What was decoded encodes back to a header that decodes the same.
  auto v1 = encode_proxy_v1(h.source, h.destination);
  auto r1 = decode_proxy_header({reinterpret_cast<const std::uint8_t*>(v1.data()), v1.size()});
  FUZZ_REQUIRE(r1.status == Status::Done && r1.consumed == v1.size());
  FUZZ_REQUIRE(r1.header.source == h.source && r1.header.destination == h.destination);
  auto v2 = encode_proxy_v2(h.source, h.destination, h.authority.value_or(""), h.alpn.value_or(""));
  auto r2 = decode_proxy_header(v2);
  FUZZ_REQUIRE(r2.status == Status::Done && r2.consumed == v2.size());
  FUZZ_REQUIRE(r2.header.source == h.source && r2.header.destination == h.destination);
  FUZZ_REQUIRE(r2.header.authority == h.authority && r2.header.alpn == h.alpn);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  auto full = decode_proxy_header(in);
  check(full, in);

  std::size_t cut = size == 0 ? 0 : (data[size - 1] * 257u + size / 2) % (size + 1);
  auto part = decode_proxy_header(in.first(cut));
  check(part, in.first(cut));
  if (part.status != Status::NeedMore) {
    FUZZ_REQUIRE(part.status == full.status);
    if (part.status == Status::Done) FUZZ_REQUIRE(part.consumed == full.consumed);
  }
  return 0;
}
