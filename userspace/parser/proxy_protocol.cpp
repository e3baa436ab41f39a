#include "parser/proxy_protocol.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <stdexcept>

#include <boost/crc.hpp>

#include "parser/byte_reader.h"

namespace snigate::parser {

namespace {

namespace ip = boost::asio::ip;

constexpr std::array<std::uint8_t, 12> kV2Signature = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                                       0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::size_t kV1MaxBytes = 107;  // spec 2.1: worst case, CRLF included
constexpr std::size_t kV2HeaderBytes = 16;

// v2 header fields (spec 2.2).
constexpr std::uint8_t kCmdLocal = 0x0, kCmdProxy = 0x1;
constexpr std::uint8_t kFamUnspec = 0x0, kFamInet = 0x1, kFamInet6 = 0x2, kFamUnix = 0x3;
constexpr std::uint8_t kTransUnspec = 0x0, kTransStream = 0x1;
constexpr std::uint8_t kTlvAlpn = 0x01, kTlvAuthority = 0x02, kTlvCrc32c = 0x03;

// CRC32c (Castagnoli), as PP2_TYPE_CRC32C uses.
using Crc32c = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

ProxyDecode fail(std::string error) {
  ProxyDecode d;
  d.status = Status::Error;
  d.error = std::move(error);
  return d;
}

// True when `data` is a prefix of `full` or starts with all of it.
bool matches_prefix(std::span<const std::uint8_t> data, std::span<const std::uint8_t> full) {
  std::size_t n = std::min(data.size(), full.size());
  return std::equal(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n), full.begin());
}

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Spec 2.1: decimal 0..65535 without leading zeros.
std::optional<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text.front() == '0')) return std::nullopt;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// Spec 2.1: IPv4 as four decimals without leading zeros, IPv6 in RFC 4291 text form.
std::optional<ip::address> parse_v1_address(std::string_view text, bool v6) {
  if (text.empty() || text.find('%') != std::string_view::npos) return std::nullopt;
  boost::system::error_code ec;
  if (!v6) {
    // inet_pton already rejects leading zeros, but not every libc does: check explicitly.
    for (std::size_t i = 0; i < text.size(); ++i)
      if (text[i] == '0' && (i == 0 || text[i - 1] == '.') && i + 1 < text.size() && text[i + 1] != '.')
        return std::nullopt;
    auto a = ip::make_address_v4(std::string(text), ec);
    if (ec) return std::nullopt;
    return ip::address(a);
  }
  auto a = ip::make_address_v6(std::string(text), ec);
  if (ec) return std::nullopt;
  return ip::address(a);
}

ProxyDecode decode_v1(std::span<const std::uint8_t> data) {
  std::string_view text(reinterpret_cast<const char*>(data.data()), std::min(data.size(), kV1MaxBytes));
  auto cr = text.find('\r');
  if (cr == std::string_view::npos || cr + 1 == text.size()) {
    // Spec 2.1: no CRLF within the first 107 bytes means an invalid line.
    if (text.size() >= kV1MaxBytes) return fail("PROXY v1 line has no CRLF within 107 bytes");
    if (text.find('\n') != std::string_view::npos) return fail("PROXY v1 line ends in a bare LF");
    return {};
  }
  if (text[cr + 1] != '\n') return fail("PROXY v1 line has a CR not followed by LF");
  std::string_view line = text.substr(kV1Prefix.size(), cr - kV1Prefix.size());
  if (std::any_of(line.begin(), line.end(), [](char c) { return c < 0x20 || c > 0x7e; }))
    return fail("PROXY v1 line has a control or non-ASCII byte");

  ProxyDecode d;
  d.header.version = 1;
  d.consumed = cr + 2;
  // Spec 2.1: after UNKNOWN the receiver ignores everything up to the CRLF.
  if (line == "UNKNOWN" || line.starts_with("UNKNOWN ")) {
    d.header.local = true;
    d.status = Status::Done;
    return d;
  }
  std::array<std::string_view, 5> fields;
  std::size_t n = 0, from = 0;
  for (;;) {
    auto sp = line.find(' ', from);
    if (n == fields.size()) return fail("PROXY v1 line has more than 6 fields");
    fields[n++] = line.substr(from, sp == std::string_view::npos ? sp : sp - from);
    if (sp == std::string_view::npos) break;
    from = sp + 1;
  }
  if (n != fields.size()) return fail("PROXY v1 line has " + std::to_string(n + 1) + " fields, expected 6");
  bool v6;
  if (fields[0] == "TCP4") v6 = false;
  else if (fields[0] == "TCP6") v6 = true;
  else return fail("PROXY v1 protocol '" + std::string(fields[0]) + "' is not TCP4, TCP6 or UNKNOWN");
  auto src = parse_v1_address(fields[1], v6);
  auto dst = parse_v1_address(fields[2], v6);
  if (!src || !dst)
    return fail("PROXY v1 address '" + std::string(src ? fields[2] : fields[1]) + "' is not " +
                (v6 ? "an IPv6" : "an IPv4") + " address");
  auto sport = parse_port(fields[3]);
  auto dport = parse_port(fields[4]);
  if (!sport || !dport)
    return fail("PROXY v1 port '" + std::string(sport ? fields[4] : fields[3]) + "' is not in 0..65535");
  d.header.source = {*src, *sport};
  d.header.destination = {*dst, *dport};
  d.status = Status::Done;
  return d;
}

// TLVs after the addresses (spec 2.2.1); only those snigate acts on are kept.
std::optional<std::string> decode_tlvs(std::span<const std::uint8_t> tlvs, std::span<const std::uint8_t> whole,
                                       ProxyHeader& header) {
  ByteReader r(tlvs);
  while (!r.empty()) {
    std::size_t offset = whole.size() - tlvs.size() + r.position();
    auto type = r.u8();
    auto value = r.vec16();
    if (!type || !value) return "PROXY v2 TLV overruns the header";
    std::string text(value->begin(), value->end());
    switch (*type) {
      case kTlvAlpn:
      case kTlvAuthority:
        // Both end up in logs and routing: no control bytes.
        if (text.empty() || std::any_of(text.begin(), text.end(),
                                        [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
          return std::string("PROXY v2 ") + (*type == kTlvAlpn ? "ALPN" : "AUTHORITY") +
                 " TLV is empty or has a control byte";
        (*type == kTlvAlpn ? header.alpn : header.authority) = std::move(text);
        break;
      case kTlvCrc32c: {
        // Spec 2.2.2: when present, the receiver must verify it, over the whole header with
        // the checksum field itself zeroed.
        if (value->size() != 4) return "PROXY v2 CRC32C TLV is not 4 bytes";
        std::size_t at = offset + 3;
        Crc32c crc;
        crc.process_bytes(whole.data(), at);
        const std::uint8_t zeros[4] = {};
        crc.process_bytes(zeros, 4);
        crc.process_bytes(whole.data() + at + 4, whole.size() - at - 4);
        std::uint32_t sent = static_cast<std::uint32_t>((*value)[0]) << 24 | (*value)[1] << 16 |
                             (*value)[2] << 8 | (*value)[3];
        if (crc.checksum() != sent) return "PROXY v2 CRC32C does not match the header";
        break;
      }
      default: break;  // spec 2.2: unknown TLVs are skipped
    }
  }
  return std::nullopt;
}

ProxyDecode decode_v2(std::span<const std::uint8_t> data) {
  if (data.size() < kV2HeaderBytes) return {};
  std::uint8_t ver_cmd = data[12], fam = data[13];
  std::size_t length = static_cast<std::size_t>(data[14] << 8 | data[15]);
  if (ver_cmd >> 4 != 2) return fail("PROXY v2 version nibble is " + std::to_string(ver_cmd >> 4) + ", not 2");
  std::uint8_t cmd = ver_cmd & 0x0f;
  if (cmd != kCmdLocal && cmd != kCmdProxy)
    return fail("PROXY v2 command " + std::to_string(cmd) + " is neither LOCAL nor PROXY");
  std::uint8_t family = fam >> 4, transport = fam & 0x0f;
  if (family > kFamUnix) return fail("PROXY v2 address family " + std::to_string(family) + " is unknown");
  if (transport != kTransUnspec && transport != kTransStream)
    return fail("PROXY v2 transport " + std::to_string(transport) + " is not a stream");
  if (data.size() < kV2HeaderBytes + length) return {};

  std::span<const std::uint8_t> whole = data.first(kV2HeaderBytes + length);
  ByteReader r(whole.subspan(kV2HeaderBytes));
  ProxyDecode d;
  d.header.version = 2;
  d.consumed = whole.size();
  std::size_t address_bytes = family == kFamInet ? 12 : family == kFamInet6 ? 36 : family == kFamUnix ? 216 : 0;
  auto addresses = r.bytes(address_bytes);
  if (!addresses)
    return fail("PROXY v2 length " + std::to_string(length) + " is too short for its addresses");
  // Spec 2.2: LOCAL, UNSPEC and AF_UNIX carry no usable TCP address; the connection's own
  // endpoints stand.
  if (cmd == kCmdLocal || family == kFamUnspec || family == kFamUnix) {
    d.header.local = true;
  } else {
    ByteReader a(*addresses);
    if (family == kFamInet) {
      ip::address_v4::bytes_type s, t;
      auto sb = a.bytes(4), tb = a.bytes(4);
      std::copy(sb->begin(), sb->end(), s.begin());
      std::copy(tb->begin(), tb->end(), t.begin());
      auto sport = a.u16(), dport = a.u16();
      d.header.source = {ip::address_v4(s), *sport};
      d.header.destination = {ip::address_v4(t), *dport};
    } else {
      ip::address_v6::bytes_type s, t;
      auto sb = a.bytes(16), tb = a.bytes(16);
      std::copy(sb->begin(), sb->end(), s.begin());
      std::copy(tb->begin(), tb->end(), t.begin());
      auto sport = a.u16(), dport = a.u16();
      d.header.source = {ip::address_v6(s), *sport};
      d.header.destination = {ip::address_v6(t), *dport};
    }
  }
  if (auto error = decode_tlvs(whole.subspan(kV2HeaderBytes + address_bytes), whole, d.header))
    return fail(*error);
  d.status = Status::Done;
  return d;
}

// One family per header (spec 2.1, 2.2): unmap IPv4-mapped addresses, or map IPv4 when the
// other side is real IPv6.
std::pair<ip::address, ip::address> same_family(ip::address a, ip::address b) {
  auto unmap = [](const ip::address& x) {
    if (x.is_v6() && x.to_v6().is_v4_mapped())
      return ip::address(ip::make_address_v4(ip::v4_mapped, x.to_v6()));
    return x;
  };
  a = unmap(a);
  b = unmap(b);
  if (a.is_v4() != b.is_v4()) {
    if (a.is_v4()) a = ip::make_address_v6(ip::v4_mapped, a.to_v4());
    if (b.is_v4()) b = ip::make_address_v6(ip::v4_mapped, b.to_v4());
  }
  return {a, b};
}

void put16(std::vector<std::uint8_t>& out, std::size_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

void put_tlv(std::vector<std::uint8_t>& out, std::uint8_t type, std::string_view value) {
  if (value.empty()) return;
  if (value.size() > 0xffff) throw std::length_error("PROXY v2 TLV value longer than 65535 bytes");
  out.push_back(type);
  put16(out, value.size());
  out.insert(out.end(), value.begin(), value.end());
}

}  // namespace

ProxyDecode decode_proxy_header(std::span<const std::uint8_t> data) {
  if (data.empty()) return {};
  if (matches_prefix(data, kV2Signature)) return decode_v2(data);
  if (matches_prefix(data, as_bytes(kV1Prefix))) {
    if (data.size() < kV1Prefix.size()) return {};
    return decode_v1(data);
  }
  return fail("connection does not start with a PROXY protocol v1 or v2 header");
}

std::string encode_proxy_v1(const ip::tcp::endpoint& source, const ip::tcp::endpoint& destination) {
  auto [src, dst] = same_family(source.address(), destination.address());
  return std::string("PROXY ") + (src.is_v4() ? "TCP4 " : "TCP6 ") + src.to_string() + " " + dst.to_string() +
         " " + std::to_string(source.port()) + " " + std::to_string(destination.port()) + "\r\n";
}

std::vector<std::uint8_t> encode_proxy_v2(const ip::tcp::endpoint& source, const ip::tcp::endpoint& destination,
                                          std::string_view authority, std::string_view alpn) {
  auto [src, dst] = same_family(source.address(), destination.address());
  std::vector<std::uint8_t> out(kV2Signature.begin(), kV2Signature.end());
  out.push_back(0x20 | kCmdProxy);
  out.push_back(static_cast<std::uint8_t>((src.is_v4() ? kFamInet : kFamInet6) << 4 | kTransStream));
  put16(out, 0);  // length, filled in below
  if (src.is_v4()) {
    for (auto b : src.to_v4().to_bytes()) out.push_back(b);
    for (auto b : dst.to_v4().to_bytes()) out.push_back(b);
  } else {
    for (auto b : src.to_v6().to_bytes()) out.push_back(b);
    for (auto b : dst.to_v6().to_bytes()) out.push_back(b);
  }
  put16(out, source.port());
  put16(out, destination.port());
  put_tlv(out, kTlvAlpn, alpn);
  put_tlv(out, kTlvAuthority, authority);
  std::size_t length = out.size() - kV2HeaderBytes;
  if (length > 0xffff) throw std::length_error("PROXY v2 header longer than 65535 bytes");
  out[14] = static_cast<std::uint8_t>(length >> 8);
  out[15] = static_cast<std::uint8_t>(length);
  return out;
}

}  // namespace snigate::parser
