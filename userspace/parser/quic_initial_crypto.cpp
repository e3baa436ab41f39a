#include "parser/quic_initial_crypto.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <algorithm>
#include <memory>
#include <string_view>

#include "parser/quic_initial.h"

namespace snigate::parser::quic {

namespace {

struct Version {
  std::array<std::uint8_t, 20> salt;
  std::string_view key_label, iv_label, hp_label;
};

// RFC 9001 5.2.
constexpr Version kV1{{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
                       0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a},
                      "quic key", "quic iv", "quic hp"};
// RFC 9369 3.3.1 and 3.3.2.
constexpr Version kV2{{0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
                       0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9},
                      "quicv2 key", "quicv2 iv", "quicv2 hp"};

using KdfCtx = std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)>;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

// HKDF (RFC 5869) in one mode: extract (key = input keying material, salt) or expand (key =
// pseudorandom key, info).
bool hkdf(int mode, std::span<const std::uint8_t> key, std::span<const std::uint8_t> salt_or_info,
          std::span<std::uint8_t> out) {
  std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr),
                                                        &EVP_KDF_free);
  if (!kdf) return false;
  KdfCtx ctx(EVP_KDF_CTX_new(kdf.get()), &EVP_KDF_CTX_free);
  if (!ctx) return false;
  char digest[] = "SHA256";
  auto* k = const_cast<std::uint8_t*>(key.data());
  auto* s = const_cast<std::uint8_t*>(salt_or_info.data());
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, k, key.size()),
      OSSL_PARAM_construct_octet_string(
          mode == EVP_KDF_HKDF_MODE_EXTRACT_ONLY ? OSSL_KDF_PARAM_SALT : OSSL_KDF_PARAM_INFO, s,
          salt_or_info.size()),
      OSSL_PARAM_construct_end()};
  return EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) == 1;
}

// HKDF-Expand-Label with an empty context (RFC 8446 7.1, as RFC 9001 5.1 uses it).
bool expand_label(std::span<const std::uint8_t> secret, std::string_view label, std::span<std::uint8_t> out) {
  constexpr std::string_view prefix = "tls13 ";
  std::vector<std::uint8_t> info{static_cast<std::uint8_t>(out.size() >> 8), static_cast<std::uint8_t>(out.size()),
                                 static_cast<std::uint8_t>(prefix.size() + label.size())};
  info.insert(info.end(), prefix.begin(), prefix.end());
  info.insert(info.end(), label.begin(), label.end());
  info.push_back(0);
  return hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, secret, info, out);
}

}  // namespace

std::optional<InitialKeys> client_initial_keys(std::uint32_t version, std::span<const std::uint8_t> dcid) {
  const Version* v = version == kVersion1 ? &kV1 : version == kVersion2 ? &kV2 : nullptr;
  if (!v) return std::nullopt;
  std::array<std::uint8_t, 32> initial_secret, client_secret;
  InitialKeys keys;
  if (!hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, dcid, v->salt, initial_secret) ||
      !expand_label(initial_secret, "client in", client_secret) ||
      !expand_label(client_secret, v->key_label, keys.key) || !expand_label(client_secret, v->iv_label, keys.iv) ||
      !expand_label(client_secret, v->hp_label, keys.hp))
    return std::nullopt;
  return keys;
}

std::optional<std::array<std::uint8_t, 5>> header_mask(const InitialKeys& keys,
                                                       std::span<const std::uint8_t, 16> sample) {
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  std::array<std::uint8_t, 16 + 16> block;  // room for a padding block, which is turned off
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_128_ecb(), nullptr, keys.hp.data(), nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx.get(), 0) != 1 ||
      EVP_EncryptUpdate(ctx.get(), block.data(), &len, sample.data(), static_cast<int>(sample.size())) != 1 ||
      len != 16)
    return std::nullopt;
  std::array<std::uint8_t, 5> mask;
  std::copy_n(block.begin(), mask.size(), mask.begin());
  return mask;
}

std::optional<std::vector<std::uint8_t>> open_payload(const InitialKeys& keys, std::uint64_t packet_number,
                                                      std::span<const std::uint8_t> header,
                                                      std::span<const std::uint8_t> sealed) {
  if (sealed.size() < kTagSize) return std::nullopt;
  std::array<std::uint8_t, 12> nonce = keys.iv;
  for (int i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<std::uint8_t>(packet_number >> (8 * i));
  auto ciphertext = sealed.first(sealed.size() - kTagSize);
  auto* tag = const_cast<std::uint8_t*>(sealed.data() + ciphertext.size());
  std::vector<std::uint8_t> plain(ciphertext.size());
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int len = 0, final_len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_128_gcm(), nullptr, keys.key.data(), nonce.data()) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, header.data(), static_cast<int>(header.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), plain.data(), &len, ciphertext.data(), static_cast<int>(ciphertext.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize), tag) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), plain.data() + len, &final_len) != 1)
    return std::nullopt;
  return plain;
}

}  // namespace snigate::parser::quic
