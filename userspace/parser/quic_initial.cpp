#include "parser/quic_initial.h"

#include <algorithm>
#include <cstdio>

#include "parser/byte_reader.h"

namespace snigate::parser::quic {

namespace {

constexpr std::uint8_t kLongHeader = 0x80;      // RFC 8999 5.1
constexpr std::size_t kMaxCidLength = 20;       // RFC 9000 17.2, for v1 and v2
constexpr std::size_t kMinInitialDatagram = 1200;  // RFC 9000 14.1

enum class PacketType { Initial, ZeroRtt, Handshake, Retry };  // v1 numbering (RFC 9000 17.2)

PacketType packet_type(std::uint32_t version, std::uint8_t first_byte) {
  unsigned bits = (first_byte >> 4) & 3;
  // RFC 9369 3.2: v2 numbers them Retry 0, Initial 1, 0-RTT 2, Handshake 3.
  if (version == kVersion2) bits = (bits + 3) & 3;
  return static_cast<PacketType>(bits);
}

const char* name(PacketType type) {
  switch (type) {
    case PacketType::Initial: return "Initial";
    case PacketType::ZeroRtt: return "0-RTT";
    case PacketType::Handshake: return "Handshake";
    case PacketType::Retry: return "Retry";
  }
  return "?";
}

std::string hex(std::uint64_t value, int width) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%0*llx", width, static_cast<unsigned long long>(value));
  return buf;
}

// The fields every QUIC version's long header has (RFC 8999 5.1); `end` is where the
// version-specific rest begins.
std::optional<LongHeader> invariant_header(std::span<const std::uint8_t> packet, std::size_t& end) {
  ByteReader r(packet);
  auto first = r.u8();
  if (!first || !(*first & kLongHeader)) return std::nullopt;
  // Each read only once the one before succeeded: a failed read does not move the reader.
  auto version = r.u32();
  auto dcid = version ? r.vec8() : std::nullopt;
  auto scid = dcid ? r.vec8() : std::nullopt;
  if (!scid) return std::nullopt;
  end = r.position();
  LongHeader h;
  h.version = *version;
  h.dcid = *dcid;
  h.scid = *scid;
  h.initial = (h.version == kVersion1 || h.version == kVersion2) &&
              packet_type(h.version, *first) == PacketType::Initial;
  return h;
}

// RFC 9000 A.3: the full packet number nearest to the one expected after `largest`.
std::uint64_t decode_packet_number(std::optional<std::uint64_t> largest, std::uint64_t truncated,
                                   std::size_t pn_len) {
  std::uint64_t expected = largest ? *largest + 1 : 0;
  std::uint64_t win = std::uint64_t{1} << (pn_len * 8), hwin = win / 2, mask = win - 1;
  std::uint64_t candidate = (expected & ~mask) | truncated;
  if (candidate + hwin <= expected && candidate < (std::uint64_t{1} << 62) - win) return candidate + win;
  if (candidate > expected + hwin && candidate >= win) return candidate - win;
  return candidate;
}

}  // namespace

std::optional<LongHeader> peek_long_header(std::span<const std::uint8_t> datagram) {
  std::size_t end = 0;
  return invariant_header(datagram, end);
}

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

QuicPreread InitialReader::feed(std::span<const std::uint8_t> datagram) {
  if (verdict_.status != Status::NeedMore) return verdict_;
  ++datagrams_;
  QuicPreread result = read_datagram(datagram);
  if (result.status != Status::NeedMore) {
    verdict_ = result;
    // The flow keeps its reader until it ends; the stream buffers are no longer needed.
    std::vector<std::uint8_t>().swap(crypto_);
    std::vector<bool>().swap(received_);
  }
  return result;
}

QuicPreread InitialReader::fail(QuicError error, const std::string& what) const {
  QuicPreread r;
  r.status = Status::Error;
  r.error = error;
  r.detail = "datagram " + std::to_string(datagrams_) + ": " + what;
  return r;
}

QuicPreread InitialReader::read_datagram(std::span<const std::uint8_t> datagram) {
  for (std::size_t pos = 0; pos < datagram.size();) {
    auto packet = datagram.subspan(pos);
    bool first = pos == 0;
    bool flow_start = first && datagrams_ == 1;
    if (!(packet[0] & kLongHeader)) {
      // RFC 9000 12.2: a short-header packet can only be the last of a datagram; zero bytes
      // after the last packet (padding outside any packet) read the same way.
      if (!first) break;
      if (flow_start)
        return fail(QuicError::NotQuic, "first byte " + hex(packet[0], 2) +
                                            " is not a long header: not the start of a QUIC connection");
      return fail(QuicError::NotInitial, "short-header packet before the ClientHello completed");
    }
    std::size_t header_end = 0;
    auto h = invariant_header(packet, header_end);
    if (!h) return fail(QuicError::BadPacket, "long header truncated at byte " + std::to_string(pos));
    if (flow_start) {
      if (h->version == 0) return fail(QuicError::UnsupportedVersion, "Version Negotiation packet from a client");
      if (h->version != kVersion1 && h->version != kVersion2)
        return fail(QuicError::UnsupportedVersion,
                    "QUIC version " + hex(h->version, 8) + "; only v1 (0x00000001) and v2 (0x6b3343cf) are read");
      version_ = h->version;
      dcid_.assign(h->dcid.begin(), h->dcid.end());
    } else if (h->version != version_ || !std::equal(h->dcid.begin(), h->dcid.end(), dcid_.begin(), dcid_.end())) {
      // RFC 9000 12.2: later packets of a datagram for another connection are ignored.
      if (!first) break;
      return fail(QuicError::BadPacket, "version or Destination Connection ID differs from the flow's first packet");
    }
    if (h->dcid.size() > kMaxCidLength || h->scid.size() > kMaxCidLength)
      return fail(QuicError::BadPacket, "connection ID longer than " + std::to_string(kMaxCidLength) + " bytes");

    PacketType type = packet_type(version_, packet[0]);
    std::size_t size = 0;
    if (type == PacketType::ZeroRtt && packets_ > 0) {
      // Early data the client may coalesce after its Initial (RFC 9000 12.2): stepped over.
      ByteReader r(packet.subspan(header_end));
      auto length = r.varint();
      if (!length || *length > r.remaining())
        return fail(QuicError::BadPacket, "0-RTT packet's Length overruns the datagram");
      size = header_end + r.position() + *length;
    } else if (type != PacketType::Initial) {
      return fail(QuicError::NotInitial,
                  std::string(name(type)) + " packet where the client's Initial was expected");
    } else {
      if (datagram.size() < kMinInitialDatagram)
        return fail(QuicError::BadPacket, "Initial packet in a datagram of " + std::to_string(datagram.size()) +
                                              " bytes; RFC 9000 14.1 requires at least 1200");
      if (!keys_) {
        keys_ = client_initial_keys(version_, dcid_);
        if (!keys_) return fail(QuicError::Decrypt, "libcrypto could not derive the Initial keys");
      }
      if (auto r = read_initial(packet, header_end, size); r.status != Status::NeedMore) return r;
      ++packets_;
      if (auto r = hello_so_far(); r.status != Status::NeedMore) return r;
      if (packets_ >= limits_.max_packets)
        return fail(QuicError::TooManyPackets, "ClientHello incomplete after " + std::to_string(packets_) +
                                                   " Initial packets, the limit");
    }
    pos += size;
  }
  return {};
}

// One Initial packet at the start of `packet`, header already read up to `header_end`: header
// protection removed (RFC 9001 5.4), payload decrypted (5.3), frames read. `size` = its length.
QuicPreread InitialReader::read_initial(std::span<const std::uint8_t> packet, std::size_t header_end,
                                        std::size_t& size) {
  std::string where = "Initial packet " + std::to_string(packets_ + 1) + ": ";
  ByteReader r(packet.subspan(header_end));
  auto token_length = r.varint();
  if (!token_length || !r.bytes(*token_length)) return fail(QuicError::BadPacket, where + "token truncated");
  auto length = r.varint();
  if (!length) return fail(QuicError::BadPacket, where + "Length field truncated");
  std::size_t pn_offset = header_end + r.position();
  if (*length > packet.size() - pn_offset)
    return fail(QuicError::BadPacket, where + "Length " + std::to_string(*length) + " overruns the " +
                                          std::to_string(packet.size() - pn_offset) + " bytes left in the datagram");
  // RFC 9001 5.4.2: the sample starts 4 bytes after the packet number's start.
  if (*length < 4 + kSampleSize)
    return fail(QuicError::BadPacket, where + "Length " + std::to_string(*length) +
                                          " too short for a header protection sample");
  size = pn_offset + *length;
  auto mask = header_mask(*keys_, packet.subspan(pn_offset + 4).first<kSampleSize>());
  if (!mask) return fail(QuicError::Decrypt, where + "libcrypto failed on the header protection");

  std::vector<std::uint8_t> header(packet.begin(), packet.begin() + static_cast<std::ptrdiff_t>(pn_offset + 4));
  header[0] ^= (*mask)[0] & 0x0f;  // long header: low 4 bits protected (RFC 9001 5.4.1)
  std::size_t pn_len = (header[0] & 3) + 1u;
  std::uint64_t truncated = 0;
  for (std::size_t i = 0; i < pn_len; ++i) {
    header[pn_offset + i] ^= (*mask)[1 + i];
    truncated = truncated << 8 | header[pn_offset + i];
  }
  header.resize(pn_offset + pn_len);
  std::uint64_t pn = decode_packet_number(largest_pn_, truncated, pn_len);
  auto payload = open_payload(*keys_, pn, header, packet.subspan(pn_offset + pn_len, *length - pn_len));
  if (!payload)
    return fail(QuicError::Decrypt, where + "packet number " + std::to_string(pn) +
                                        ": AEAD tag does not verify (corrupted, or not keyed by this Destination "
                                        "Connection ID)");
  // RFC 9000 17.2.2: the reserved bits are zero once protection is removed.
  if (header[0] & 0x0c) return fail(QuicError::BadPacket, where + "reserved header bits are not zero");
  largest_pn_ = std::max(largest_pn_.value_or(0), pn);
  if (payload->empty()) return fail(QuicError::BadPacket, where + "no frames");  // RFC 9000 12.4
  return read_frames(*payload, where);
}

// RFC 9000 12.4: an Initial carries PADDING, PING, ACK, CRYPTO and CONNECTION_CLOSE only.
QuicPreread InitialReader::read_frames(std::span<const std::uint8_t> payload, const std::string& where) {
  ByteReader f(payload);
  while (!f.empty()) {
    std::size_t at = f.position();
    auto type = f.varint();
    if (!type) return fail(QuicError::BadFrame, where + "frame type truncated at byte " + std::to_string(at));
    switch (*type) {
      case 0x00:  // PADDING
      case 0x01:  // PING
        break;
      case 0x02:
      case 0x03: {  // ACK, with ECN counts when 0x03 (RFC 9000 19.3)
        auto largest = f.varint(), delay = f.varint(), ranges = f.varint(), first_range = f.varint();
        bool ok = largest && delay && ranges && first_range;
        // Each range is two varints of at least a byte: the count is bounded by the payload.
        for (std::uint64_t i = 0; ok && i < *ranges; ++i) ok = f.varint() && f.varint();
        if (ok && *type == 0x03) ok = f.varint() && f.varint() && f.varint();
        if (!ok) return fail(QuicError::BadFrame, where + "ACK frame at byte " + std::to_string(at) + " truncated");
        break;
      }
      case 0x06: {  // CRYPTO (RFC 9000 19.6)
        auto offset = f.varint();
        auto length = offset ? f.varint() : std::nullopt;
        auto data = length ? f.bytes(*length) : std::nullopt;
        if (!data) return fail(QuicError::BadFrame, where + "CRYPTO frame at byte " + std::to_string(at) + " truncated");
        if (auto r = add_crypto(*offset, *data, where); r.status != Status::NeedMore) return r;
        break;
      }
      case 0x1c:
        return fail(QuicError::BadFrame, where + "CONNECTION_CLOSE: the client gave up the connection");
      default:
        return fail(QuicError::BadFrame, where + "frame type " + hex(*type, 2) + " at byte " + std::to_string(at) +
                                             " is not allowed in an Initial packet (RFC 9000 12.4)");
    }
  }
  return {};
}

QuicPreread InitialReader::add_crypto(std::uint64_t offset, std::span<const std::uint8_t> data,
                                      const std::string& where) {
  // Offsets are below 2^62 (varints), so the sum cannot wrap.
  std::uint64_t end = offset + data.size();
  if (end > limits_.max_crypto_bytes)
    return fail(QuicError::TooLarge, where + "CRYPTO data up to byte " + std::to_string(end) + ", beyond the limit of " +
                                         std::to_string(limits_.max_crypto_bytes));
  if (end > crypto_.size()) {
    crypto_.resize(end);
    received_.resize(end);
  }
  for (std::size_t i = 0; i < data.size(); ++i) {
    std::size_t at = offset + i;
    // RFC 9000 19.6: a retransmission carries the same bytes. Refusing different ones keeps
    // the name routed on the name the backend reads.
    if (received_[at] && crypto_[at] != data[i])
      return fail(QuicError::BadFrame, where + "CRYPTO data at offset " + std::to_string(at) + " differs from an earlier copy");
    crypto_[at] = data[i];
    received_[at] = true;
  }
  while (contiguous_ < received_.size() && received_[contiguous_]) ++contiguous_;
  return {};
}

QuicPreread InitialReader::hello_so_far() const {
  if (contiguous_ < 4) return {};
  std::size_t hello_size = 4 + static_cast<std::size_t>(crypto_[1] << 16 | crypto_[2] << 8 | crypto_[3]);
  if (hello_size > limits_.max_crypto_bytes)
    return fail(QuicError::TooLarge, "ClientHello of " + std::to_string(hello_size) + " bytes, beyond the limit of " +
                                         std::to_string(limits_.max_crypto_bytes));
  auto tls = parse_client_hello_message(std::span(crypto_).first(contiguous_));
  if (tls.status == Status::Error) return fail(QuicError::BadHello, "ClientHello: " + tls.detail);
  QuicPreread r;
  r.status = tls.status;
  r.hello = std::move(tls.hello);
  return r;
}

}  // namespace snigate::parser::quic
