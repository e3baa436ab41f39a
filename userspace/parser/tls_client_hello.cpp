#include "parser/tls_client_hello.h"

#include <algorithm>
#include <bitset>
#include <cstdio>
#include <optional>

#include "parser/byte_reader.h"

namespace snigate::parser {

namespace {

constexpr std::uint8_t kContentHandshake = 0x16;    // RFC 8446 5.1
constexpr std::uint8_t kHandshakeClientHello = 1;  // RFC 8446 4
constexpr std::size_t kRecordHeader = 5;
constexpr std::size_t kMaxRecordPayload = 1u << 14;  // RFC 8446 5.1: MUST NOT exceed 2^14

constexpr std::uint16_t kExtServerName = 0;            // RFC 6066 3
constexpr std::uint16_t kExtAlpn = 16;                 // RFC 7301 3.1
constexpr std::uint16_t kExtSupportedVersions = 43;    // RFC 8446 4.2.1
constexpr std::uint16_t kExtEncryptedClientHello = 0xfe0d;  // draft-ietf-tls-esni

std::string hex(unsigned value, int width) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*x", width, value);
  return buf;
}

TlsPreread fail(TlsError error, std::string detail) {
  TlsPreread r;
  r.status = Status::Error;
  r.error = error;
  r.detail = std::move(detail);
  return r;
}

// Host names as routed and logged: letters, digits, '-', '_' and '.'. Anything else (NUL,
// spaces, '/', bytes >= 0x80) is rejected rather than passed on to a table or a log line.
bool valid_host_byte(std::uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

TlsPreread parse_server_name(std::span<const std::uint8_t> ext, ClientHello& hello) {
  ByteReader r(ext);
  auto list = r.vec16();
  if (!list || !r.empty() || list->empty())
    return fail(TlsError::BadExtension, "server_name: list length does not match the extension");
  ByteReader names(*list);
  bool have_host = false;
  while (!names.empty()) {
    auto type = names.u8();
    auto name = names.vec16();
    if (!type || !name) return fail(TlsError::BadExtension, "server_name: entry overruns the list");
    if (*type != 0) continue;  // only host_name (0) is defined; others are ignored
    // RFC 6066 3: no more than one name of the same name_type.
    if (have_host) return fail(TlsError::BadExtension, "server_name: more than one host_name");
    have_host = true;
    if (name->empty() || name->size() > 255)
      return fail(TlsError::BadExtension,
                  "server_name: host_name length " + std::to_string(name->size()) + " not in 1..255");
    std::string host;
    host.reserve(name->size());
    for (std::size_t i = 0; i < name->size(); ++i) {
      std::uint8_t c = (*name)[i];
      if (!valid_host_byte(c))
        return fail(TlsError::BadExtension, "server_name: byte " + hex(c, 2) + " at offset " +
                                                std::to_string(i) + " is not allowed in a host name");
      host.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
    }
    if (host.back() == '.') host.pop_back();
    // Empty labels ("a..b", ".a", "a..") would never match a route and only muddle the logs.
    if (host.empty() || host.front() == '.' || host.back() == '.' || host.find("..") != std::string::npos)
      return fail(TlsError::BadExtension, "server_name: '" + host + "' is not a host name");
    hello.sni = std::move(host);
  }
  return {};
}

TlsPreread parse_alpn(std::span<const std::uint8_t> ext, ClientHello& hello) {
  ByteReader r(ext);
  auto list = r.vec16();
  if (!list || !r.empty() || list->size() < 2)
    return fail(TlsError::BadExtension, "alpn: list length does not match the extension");
  ByteReader names(*list);
  while (!names.empty()) {
    auto name = names.vec8();
    // RFC 7301 3.1: empty strings MUST NOT be included.
    if (!name || name->empty())
      return fail(TlsError::BadExtension, "alpn: empty or truncated protocol name");
    hello.alpn.emplace_back(name->begin(), name->end());
  }
  return {};
}

TlsPreread parse_supported_versions(std::span<const std::uint8_t> ext, ClientHello& hello) {
  ByteReader r(ext);
  auto list = r.vec8();
  if (!list || !r.empty() || list->size() < 2 || list->size() % 2 != 0)
    return fail(TlsError::BadExtension, "supported_versions: bad list length");
  ByteReader versions(*list);
  while (auto v = versions.u16())
    if (!is_grease(*v)) hello.supported_versions.push_back(*v);
  return {};
}

// The ClientHello body, after the 4-byte handshake header (RFC 8446 4.1.2).
TlsPreread parse_body(std::span<const std::uint8_t> body) {
  TlsPreread result;
  ClientHello& hello = result.hello;
  ByteReader r(body);
  auto version = r.u16();
  if (!version || (*version >> 8) != 3)
    return fail(TlsError::BadHandshake, "ClientHello legacy_version is not 3.x");
  hello.legacy_version = *version;
  if (!r.bytes(32)) return fail(TlsError::BadHandshake, "ClientHello too short for its random");
  auto session_id = r.vec8();
  if (!session_id || session_id->size() > 32)
    return fail(TlsError::BadHandshake, "ClientHello session id longer than 32 bytes or truncated");
  auto suites = r.vec16();
  if (!suites || suites->empty() || suites->size() % 2 != 0)
    return fail(TlsError::BadHandshake, "ClientHello cipher_suites empty, odd or truncated");
  auto compression = r.vec8();
  if (!compression || compression->empty())
    return fail(TlsError::BadHandshake, "ClientHello compression_methods empty or truncated");
  // RFC 5246 7.4.1.2: a hello may end here, without extensions (then there is no SNI).
  if (!r.empty()) {
    auto extensions = r.vec16();
    if (!extensions || !r.empty())
      return fail(TlsError::BadHandshake, "ClientHello extensions length does not match the message");
    ByteReader ext(*extensions);
    // One bit per extension type: a 16 KB hello can carry 4000 extensions, too many to compare
    // pairwise.
    std::bitset<65536> seen;
    while (!ext.empty()) {
      auto type = ext.u16();
      auto data = ext.vec16();
      if (!type || !data)
        return fail(TlsError::BadExtension, "extension overruns the extensions block");
      // RFC 8446 4.2: no more than one extension of the same type.
      if (seen.test(*type))
        return fail(TlsError::BadExtension, "extension " + hex(*type, 4) + " appears twice");
      seen.set(*type);
      TlsPreread sub;
      switch (*type) {
        case kExtServerName: sub = parse_server_name(*data, hello); break;
        case kExtAlpn: sub = parse_alpn(*data, hello); break;
        case kExtSupportedVersions: sub = parse_supported_versions(*data, hello); break;
        case kExtEncryptedClientHello: hello.ech = true; break;
        default: break;
      }
      if (sub.status == Status::Error) return sub;
    }
  }
  result.status = Status::Done;
  return result;
}

TlsPreread not_client_hello(std::uint8_t type) {
  return fail(TlsError::BadHandshake,
              "first handshake message has type " + std::to_string(type) + ", expected ClientHello (1)");
}

// The handshake bytes carried by the (already validated) records in `data`, the last one
// possibly cut short: in place when there is one record, the usual case, else joined.
std::span<const std::uint8_t> handshake_bytes(std::span<const std::uint8_t> data, std::vector<std::uint8_t>& joined) {
  std::span<const std::uint8_t> first;
  for (std::size_t pos = 0; pos + kRecordHeader < data.size();) {
    std::size_t length = static_cast<std::size_t>(data[pos + 3] << 8 | data[pos + 4]);
    auto payload = data.subspan(pos + kRecordHeader, std::min(length, data.size() - pos - kRecordHeader));
    if (pos == 0) {
      first = payload;
    } else {
      if (joined.empty()) joined.assign(first.begin(), first.end());
      joined.insert(joined.end(), payload.begin(), payload.end());
    }
    pos += kRecordHeader + length;
  }
  return joined.empty() ? first : std::span<const std::uint8_t>(joined);
}

}  // namespace

const char* to_string(TlsError error) {
  switch (error) {
    case TlsError::None: return "none";
    case TlsError::NotTls: return "not TLS";
    case TlsError::SslV2: return "SSLv2 hello";
    case TlsError::BadRecord: return "bad TLS record";
    case TlsError::BadHandshake: return "bad ClientHello";
    case TlsError::BadExtension: return "bad ClientHello extension";
    case TlsError::TooLarge: return "ClientHello too large";
  }
  return "unknown";
}

TlsPreread parse_client_hello_message(std::span<const std::uint8_t> message) {
  if (message.size() < 4) return {};
  if (message[0] != kHandshakeClientHello) return not_client_hello(message[0]);
  std::size_t body = static_cast<std::size_t>(message[1] << 16 | message[2] << 8 | message[3]);
  if (message.size() - 4 < body) return {};
  return parse_body(message.subspan(4, body));
}

TlsPreread parse_tls_preread(std::span<const std::uint8_t> data, std::size_t max_bytes) {
  TlsCursor fresh;
  return parse_tls_preread(data, fresh, max_bytes);
}

TlsPreread parse_tls_preread(std::span<const std::uint8_t> data, TlsCursor& cursor, std::size_t max_bytes) {
  if (data.empty()) return {};
  // SSLv2 CLIENT-HELLO with a 2-byte header: high bit set, then msg type 1 (RFC 6101 E.2).
  if (data[0] & 0x80) {
    if (data.size() < 3) return {};
    if (data[2] == 1)
      return fail(TlsError::SslV2, "SSLv2-style ClientHello; only TLS 1.0 or later is routed");
    return fail(TlsError::NotTls, "first byte " + hex(data[0], 2) + " is not a TLS handshake record");
  }
  if (data[0] != kContentHandshake)
    return fail(TlsError::NotTls, "first byte " + hex(data[0], 2) +
                                      " is not a TLS handshake record (0x16); plain text on a TLS port?");
  if (data.size() >= 2 && data[1] != 3)
    return fail(TlsError::NotTls, "record version major " + hex(data[1], 2) + " is not 3");

  // The handshake bytes so far are the record payloads concatenated (RFC 8446 5.1 lets a
  // handshake message span records), including the available part of an incomplete record.
  // The daemon re-calls with every segment, so until the hello is complete only the record
  // headers are walked and the 4-byte handshake header kept: nothing is copied per call.
  std::uint8_t hs_header[4];
  std::copy(std::begin(cursor.header), std::end(cursor.header), hs_header);
  std::size_t collected = cursor.collected;
  auto collect = [&](std::span<const std::uint8_t> payload) {
    for (std::size_t i = 0; i < payload.size() && collected + i < 4; ++i) hs_header[collected + i] = payload[i];
    collected += payload.size();
  };
  // Done or an error once the handshake bytes decide it; otherwise checks that the rest of the
  // hello can still fit: payload_end is where the collected payload ends in `data`, and
  // record_left how much more payload the current record will carry.
  auto decide = [&](std::size_t payload_end, std::size_t record_left) -> std::optional<TlsPreread> {
    std::size_t missing = 4 - std::min<std::size_t>(collected, 4);
    if (collected >= 4) {
      if (hs_header[0] != kHandshakeClientHello) return not_client_hello(hs_header[0]);
      std::size_t body = static_cast<std::size_t>(hs_header[1] << 16 | hs_header[2] << 8 | hs_header[3]);
      if (collected >= 4 + body) {
        // Judged by where the hello ends, not by how much arrived, so the verdict is the same
        // however the bytes were segmented.
        std::size_t hello_end = payload_end - (collected - 4 - body);
        if (hello_end > max_bytes)
          return fail(TlsError::TooLarge, "ClientHello ends at byte " + std::to_string(hello_end) +
                                              ", beyond the preread limit of " + std::to_string(max_bytes));
        std::vector<std::uint8_t> joined;
        return parse_body(handshake_bytes(data.first(hello_end), joined).subspan(4, body));
      }
      missing = 4 + body - collected;
    }
    // A lower bound: the rest of the payload, plus one more record header if it cannot all
    // come in the current record.
    std::size_t needed = payload_end + missing + (missing > record_left ? kRecordHeader : 0);
    if (needed > max_bytes)
      return fail(TlsError::TooLarge, "ClientHello needs at least " + std::to_string(needed) +
                                          " bytes, more than the preread limit of " +
                                          std::to_string(max_bytes));
    return std::nullopt;
  };

  std::size_t pos = cursor.pos;
  for (int record = cursor.record; data.size() - pos >= kRecordHeader; ++record) {
    const std::uint8_t* h = data.data() + pos;
    if (h[0] != kContentHandshake)
      return fail(TlsError::BadRecord, "record " + std::to_string(record) + " has content type " +
                                           hex(h[0], 2) + " before the ClientHello ended");
    if (h[1] != 3)
      return fail(TlsError::BadRecord,
                  "record " + std::to_string(record) + " version major " + hex(h[1], 2) + " is not 3");
    std::size_t length = static_cast<std::size_t>(h[3] << 8 | h[4]);
    if (length == 0 || length > kMaxRecordPayload)
      return fail(TlsError::BadRecord, "record " + std::to_string(record) + " length " +
                                           std::to_string(length) + " not in 1..16384");
    std::size_t available = std::min(length, data.size() - pos - kRecordHeader);
    collect(data.subspan(pos + kRecordHeader, available));
    if (available < length) {
      if (auto verdict = decide(data.size(), length - available)) return *verdict;
      return {};
    }
    pos += kRecordHeader + length;
    // Most records of a finely fragmented hello decide nothing: skip building a verdict for
    // them (a hello dripped in tiny records is re-walked on every call).
    std::size_t wanted = collected < 4 ? 4 : 4 + (hs_header[1] << 16 | hs_header[2] << 8 | hs_header[3]);
    bool undecided = collected < wanted && (collected < 4 || hs_header[0] == kHandshakeClientHello) &&
                     pos + (wanted - collected) + kRecordHeader <= max_bytes;
    if (!undecided) {
      if (auto verdict = decide(pos, 0)) return *verdict;
    }
    cursor.pos = pos;
    cursor.collected = collected;
    std::copy(std::begin(hs_header), std::end(hs_header), cursor.header);
    cursor.record = record + 1;
  }
  return {};
}

}  // namespace snigate::parser
