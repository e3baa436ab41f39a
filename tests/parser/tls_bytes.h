#pragma once
// Builds ClientHello bytes field by field, so each test states exactly which field it breaks.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace snigate::parser::test {

using Bytes = std::vector<std::uint8_t>;

inline void put16(Bytes& out, std::size_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}
inline void append(Bytes& out, std::span<const std::uint8_t> b) { out.insert(out.end(), b.begin(), b.end()); }
inline void append(Bytes& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }

inline Bytes extension(std::uint16_t type, const Bytes& data) {
  Bytes e;
  put16(e, type);
  put16(e, data.size());
  append(e, data);
  return e;
}

inline Bytes server_name_ext(std::string_view host) {
  Bytes entry{0};  // host_name
  put16(entry, host.size());
  append(entry, host);
  Bytes list;
  put16(list, entry.size());
  append(list, entry);
  return extension(0, list);
}

inline Bytes alpn_ext(const std::vector<std::string>& names) {
  Bytes protos;
  for (const auto& n : names) {
    protos.push_back(static_cast<std::uint8_t>(n.size()));
    append(protos, n);
  }
  Bytes list;
  put16(list, protos.size());
  append(list, protos);
  return extension(16, list);
}

inline Bytes supported_versions_ext(const std::vector<std::uint16_t>& versions) {
  Bytes list{static_cast<std::uint8_t>(versions.size() * 2)};
  for (auto v : versions) put16(list, v);
  return extension(43, list);
}

struct HelloFields {
  std::uint16_t legacy_version = 0x0303;
  std::size_t session_id_len = 32;
  Bytes cipher_suites{0x13, 0x01, 0xc0, 0x2f};
  Bytes compression{0};
  bool with_extensions = true;
  Bytes extensions;
};

// Handshake message: type 1, 24-bit length, body (RFC 8446 4.1.2).
inline Bytes client_hello(const HelloFields& f) {
  Bytes body;
  put16(body, f.legacy_version);
  body.insert(body.end(), 32, 0xab);  // random
  body.push_back(static_cast<std::uint8_t>(f.session_id_len));
  body.insert(body.end(), f.session_id_len, 0xcd);
  put16(body, f.cipher_suites.size());
  append(body, f.cipher_suites);
  body.push_back(static_cast<std::uint8_t>(f.compression.size()));
  append(body, f.compression);
  if (f.with_extensions) {
    put16(body, f.extensions.size());
    append(body, f.extensions);
  }
  Bytes msg{1, static_cast<std::uint8_t>(body.size() >> 16), static_cast<std::uint8_t>(body.size() >> 8),
            static_cast<std::uint8_t>(body.size())};
  append(msg, body);
  return msg;
}

// Handshake bytes framed into handshake records of at most `fragment` payload bytes.
inline Bytes records(std::span<const std::uint8_t> handshake, std::size_t fragment = 16384,
                     std::uint8_t minor = 0x01) {
  Bytes out;
  for (std::size_t pos = 0; pos < handshake.size(); pos += fragment) {
    std::size_t n = std::min(fragment, handshake.size() - pos);
    out.insert(out.end(), {0x16, 0x03, minor});
    put16(out, n);
    append(out, handshake.subspan(pos, n));
  }
  return out;
}

// The handshake bytes carried by a run of TLS records (the inverse of records()).
inline Bytes unframe(std::span<const std::uint8_t> data) {
  Bytes out;
  for (std::size_t pos = 0; pos + 5 <= data.size();) {
    std::size_t n = static_cast<std::size_t>(data[pos + 3] << 8 | data[pos + 4]);
    append(out, data.subspan(pos + 5, std::min(n, data.size() - pos - 5)));
    pos += 5 + n;
  }
  return out;
}

inline std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace snigate::parser::test
