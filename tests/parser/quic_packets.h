#pragma once
// Builds protected QUIC Initial packets, the inverse of the reader (RFC 9001 5.3-5.4), so a
// test can say which frames go in which packet: a ClientHello split across packets, frames
// out of order, packets coalesced. The keys come from the reader's crypto file, itself checked
// against the RFC vectors; only the sealing direction is here.
#include <openssl/evp.h>

#include <memory>

#include "parser/quic_initial.h"
#include "parser/quic_initial_crypto.h"
#include "tls_bytes.h"

namespace snigate::parser::test {

// RFC 9000 16: the shortest encoding.
inline Bytes varint(std::uint64_t v) {
  int n = v < 64 ? 1 : v < 16384 ? 2 : v < (1u << 30) ? 4 : 8;
  Bytes out;
  for (int i = n - 1; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  out[0] |= static_cast<std::uint8_t>((n == 1 ? 0 : n == 2 ? 1 : n == 4 ? 2 : 3) << 6);
  return out;
}

inline Bytes crypto_frame(std::uint64_t offset, std::span<const std::uint8_t> data) {
  Bytes f{0x06};
  append(f, varint(offset));
  append(f, varint(data.size()));
  append(f, data);
  return f;
}

struct PacketSpec {
  std::uint32_t version = quic::kVersion1;
  unsigned type_bits = 0;  // as on the wire: Initial is 0 in v1, 1 in v2
  Bytes dcid{0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};
  Bytes scid{0x5c};
  std::uint64_t packet_number = 0;
  std::size_t pn_len = 2;
};

inline Bytes seal(const quic::InitialKeys& keys, std::uint64_t pn, std::span<const std::uint8_t> header,
                  std::span<const std::uint8_t> plain) {
  std::array<std::uint8_t, 12> nonce = keys.iv;
  for (int i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<std::uint8_t>(pn >> (8 * i));
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  Bytes out(plain.size() + quic::kTagSize);
  int len = 0;
  EVP_EncryptInit_ex(ctx.get(), EVP_aes_128_gcm(), nullptr, keys.key.data(), nonce.data());
  EVP_EncryptUpdate(ctx.get(), nullptr, &len, header.data(), static_cast<int>(header.size()));
  EVP_EncryptUpdate(ctx.get(), out.data(), &len, plain.data(), static_cast<int>(plain.size()));
  EVP_EncryptFinal_ex(ctx.get(), out.data() + len, &len);
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(quic::kTagSize), out.data() + plain.size());
  return out;
}

// A protected long-header packet of exactly `size` bytes: `frames`, then PADDING frames.
inline Bytes protected_packet(const PacketSpec& s, Bytes frames, std::size_t size = 1200) {
  bool initial = s.type_bits == (s.version == quic::kVersion2 ? 1u : 0u);
  Bytes header{static_cast<std::uint8_t>(0xc0 | s.type_bits << 4 | (s.pn_len - 1))};
  for (int i = 3; i >= 0; --i) header.push_back(static_cast<std::uint8_t>(s.version >> (8 * i)));
  header.push_back(static_cast<std::uint8_t>(s.dcid.size()));
  append(header, s.dcid);
  header.push_back(static_cast<std::uint8_t>(s.scid.size()));
  append(header, s.scid);
  if (initial) header.push_back(0);  // no token
  std::size_t fixed = header.size() + 2 + s.pn_len + quic::kTagSize;  // Length in 2 bytes
  if (frames.size() + fixed < size) frames.resize(size - fixed, 0x00);
  // RFC 9001 5.4.2: enough payload for the header protection sample.
  if (frames.size() + s.pn_len < 4) frames.resize(4 - s.pn_len, 0x00);
  put16(header, 0x4000 | (s.pn_len + frames.size() + quic::kTagSize));
  std::size_t pn_offset = header.size();
  for (std::size_t i = s.pn_len; i-- > 0;) header.push_back(static_cast<std::uint8_t>(s.packet_number >> (8 * i)));
  auto keys = *quic::client_initial_keys(s.version, s.dcid);
  Bytes packet = header;
  append(packet, seal(keys, s.packet_number, header, frames));
  auto mask = *quic::header_mask(keys, std::span(packet).subspan(pn_offset + 4).first<quic::kSampleSize>());
  packet[0] ^= mask[0] & 0x0f;
  for (std::size_t i = 0; i < s.pn_len; ++i) packet[pn_offset + i] ^= mask[1 + i];
  return packet;
}

inline Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) append(out, p);
  return out;
}

}  // namespace snigate::parser::test
