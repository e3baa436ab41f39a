#pragma once
// The cryptography of QUIC Initial packets (RFC 9001 5, RFC 9369 3.3): keys derived from the
// client's Destination Connection ID with a published salt, so they protect against nothing
// but accidents and can be derived by any middlebox. Kept apart from the packet parsing so the
// parser reads as QUIC and this file as OpenSSL; no OpenSSL type leaves it.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace snigate::parser::quic {

struct InitialKeys {
  std::array<std::uint8_t, 16> key{};  // AEAD_AES_128_GCM key
  std::array<std::uint8_t, 12> iv{};   // nonce base, XORed with the packet number
  std::array<std::uint8_t, 16> hp{};   // header protection key (AES-128-ECB)
};

// The client's Initial keys for QUIC v1 or v2 (nullopt for any other version, or if libcrypto
// fails). RFC 9001 5.2 and appendix A.1; RFC 9369 3.3.1-3.3.2 for v2's salt and labels.
std::optional<InitialKeys> client_initial_keys(std::uint32_t version, std::span<const std::uint8_t> dcid);

// RFC 9001 5.4.3: AES-128-ECB of the 16-byte sample; the first 5 bytes are the mask.
std::optional<std::array<std::uint8_t, 5>> header_mask(const InitialKeys& keys,
                                                       std::span<const std::uint8_t, 16> sample);

// RFC 9001 5.3: AES-128-GCM with nonce = iv XOR packet number. `sealed` is ciphertext followed
// by the 16-byte tag. nullopt when the tag does not verify.
std::optional<std::vector<std::uint8_t>> open_payload(const InitialKeys& keys, std::uint64_t packet_number,
                                                      std::span<const std::uint8_t> header,
                                                      std::span<const std::uint8_t> sealed);

inline constexpr std::size_t kTagSize = 16;
inline constexpr std::size_t kSampleSize = 16;

}  // namespace snigate::parser::quic
