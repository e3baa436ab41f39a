#pragma once
// TLS ClientHello preread (RFC 8446 4.1.2, RFC 5246 7.4.1.2): SNI, ALPN and versions from the
// first bytes a client sends, without decrypting anything. Pure function over a byte span.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "parser/status.h"

namespace snigate::parser {

struct ClientHello {
  std::string sni;                 // lower-cased, trailing dot removed; empty when absent
  std::vector<std::string> alpn;   // in client order
  std::uint16_t legacy_version = 0;
  std::vector<std::uint16_t> supported_versions;  // GREASE values removed
  bool ech = false;                // encrypted_client_hello present: sni is the OUTER name
};

enum class TlsError { None, NotTls, SslV2, BadRecord, BadHandshake, BadExtension, TooLarge };
const char* to_string(TlsError);

struct TlsPreread {
  Status status = Status::NeedMore;
  ClientHello hello;
  TlsError error = TlsError::None;
  std::string detail;              // what was wrong and where, for the access log
};

// data = every byte received so far from the client (the daemon re-calls with more). Handles a
// ClientHello split across several TLS records and arriving byte by byte. Bytes needed beyond
// max_bytes -> Error TooLarge. Non-TLS first byte -> NotTls; SSLv2-style hello -> SslV2.
TlsPreread parse_tls_preread(std::span<const std::uint8_t> data, std::size_t max_bytes = 16384);

// Where earlier calls stopped in one connection's growing buffer. With it a re-call resumes
// after the records already walked instead of at the first byte, so a hello dripped in tiny
// records costs linear rather than quadratic time. One per connection, default-constructed;
// pass the same buffer (grown at its end only) and the same max_bytes every time.
struct TlsCursor {
  std::size_t pos = 0;          // end of the complete records walked
  std::size_t collected = 0;    // handshake bytes they carried
  std::uint8_t header[4] = {};  // the first of those: handshake type and length
  int record = 1;               // number of the next record, for error texts
};
TlsPreread parse_tls_preread(std::span<const std::uint8_t> data, TlsCursor& cursor,
                             std::size_t max_bytes = 16384);

// The ClientHello as a bare handshake message, without records: QUIC carries the handshake in
// CRYPTO frames (RFC 9001 4), so its reader calls this on the reassembled stream. `message`
// starts at the 4-byte handshake header; NeedMore until the whole message is there, bytes after
// it ignored. The caller bounds the size.
TlsPreread parse_client_hello_message(std::span<const std::uint8_t> message);

// RFC 8701: 0x?a?a with both bytes equal.
constexpr bool is_grease(std::uint16_t value) {
  return (value & 0x0f0f) == 0x0a0a && (value >> 8) == (value & 0xff);
}

}  // namespace snigate::parser
