#include "parser/quic_initial.h"

namespace snigate::parser::quic {

std::optional<LongHeader> peek_long_header(std::span<const std::uint8_t>) { return std::nullopt; }

const char* to_string(QuicError error) {
  switch (error) {
    case QuicError::None: return "none";
    case QuicError::NotQuic: return "not QUIC";
    case QuicError::UnsupportedVersion: return "unsupported QUIC version";
    case QuicError::NotInitial: return "not an Initial packet";
    case QuicError::BadPacket: return "bad QUIC packet";
    case QuicError::Decrypt: return "Initial packet does not decrypt";
    case QuicError::BadFrame: return "bad or unexpected frame in Initial packet";
    case QuicError::TooLarge: return "ClientHello too large";
    case QuicError::TooManyPackets: return "ClientHello spans too many packets";
    case QuicError::BadHello: return "bad ClientHello";
  }
  return "unknown";
}

InitialReader::InitialReader(InitialLimits limits) : limits_(limits) {}

QuicPreread InitialReader::feed(std::span<const std::uint8_t>) { return verdict_; }

}  // namespace snigate::parser::quic
