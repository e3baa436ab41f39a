#pragma once
// QUIC Initial-packet preread (RFC 9000 17.2.2, RFC 9001 5, RFC 9369): the ClientHello a QUIC
// client sends in its Initial packets, read without taking part in the connection. Initial
// packets are protected with keys anyone can derive from the client's Destination Connection
// ID, so the edge can read SNI and ALPN as it does on TCP. Pure: bytes in, a verdict out.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "parser/quic_initial_crypto.h"
#include "parser/status.h"
#include "parser/tls_client_hello.h"

namespace snigate::parser::quic {

inline constexpr std::uint32_t kVersion1 = 0x00000001;  // RFC 9000
inline constexpr std::uint32_t kVersion2 = 0x6b3343cf;  // RFC 9369

struct LongHeader {
  std::uint32_t version = 0;            // 0 = Version Negotiation
  bool initial = false;                 // Initial packet type for this version (v2 numbers differ)
  std::span<const std::uint8_t> dcid;   // into the datagram
  std::span<const std::uint8_t> scid;
};
// First packet of a datagram, header only, nothing decrypted. nullopt: short header or truncated.
std::optional<LongHeader> peek_long_header(std::span<const std::uint8_t> datagram);

enum class QuicError { None, NotQuic, UnsupportedVersion, NotInitial, BadPacket, Decrypt,
                       BadFrame, TooLarge, TooManyPackets, BadHello };
const char* to_string(QuicError);

struct QuicPreread {
  Status status = Status::NeedMore;
  ClientHello hello;                    // same fields as on TCP
  QuicError error = QuicError::None;
  std::string detail;                   // what was wrong and where, for the access log
};

struct InitialLimits {
  std::size_t max_packets = 16;         // Initial packets read before giving up
  std::size_t max_crypto_bytes = 16384; // highest CRYPTO offset + length accepted
};

// One per flow. Feed each datagram the client sends, in arrival order, until Done or Error.
// Coalesced packets, CRYPTO frames out of order and across packets, PADDING/PING/ACK skipped.
// After Done or Error, further calls return the same verdict.
class InitialReader {
 public:
  explicit InitialReader(InitialLimits limits = {});
  QuicPreread feed(std::span<const std::uint8_t> datagram);

 private:
  QuicPreread read_datagram(std::span<const std::uint8_t> datagram);
  QuicPreread read_initial(std::span<const std::uint8_t> packet, std::size_t header_end, std::size_t& size);
  QuicPreread read_frames(std::span<const std::uint8_t> payload, const std::string& where);
  QuicPreread add_crypto(std::uint64_t offset, std::span<const std::uint8_t> data, const std::string& where);
  QuicPreread hello_so_far() const;
  QuicPreread fail(QuicError error, const std::string& what) const;

  InitialLimits limits_;
  QuicPreread verdict_;                   // kept once Done or Error
  std::size_t datagrams_ = 0;             // fed so far, for error texts
  std::size_t packets_ = 0;               // Initial packets read so far
  std::uint32_t version_ = 0;             // of the flow's first packet
  std::vector<std::uint8_t> dcid_;        // the client's first Destination Connection ID
  std::optional<InitialKeys> keys_;       // derived from it
  std::optional<std::uint64_t> largest_pn_;
  std::vector<std::uint8_t> crypto_;      // the CRYPTO stream, by offset
  std::vector<bool> received_;            // which of its bytes have arrived
  std::size_t contiguous_ = 0;            // bytes received from offset 0 without a gap
};

}  // namespace snigate::parser::quic
