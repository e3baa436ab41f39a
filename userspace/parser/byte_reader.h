#pragma once
// Bounds-checked big-endian reader over a byte span: every parser reads through it, so no
// length field from the wire can move a read past the end.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace snigate::parser {

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::uint8_t> data) : data_(data) {}

  std::size_t remaining() const { return data_.size() - pos_; }
  std::size_t position() const { return pos_; }
  bool empty() const { return remaining() == 0; }

  std::optional<std::uint8_t> u8() {
    if (remaining() < 1) return std::nullopt;
    return data_[pos_++];
  }
  std::optional<std::uint16_t> u16() {
    if (remaining() < 2) return std::nullopt;
    auto v = static_cast<std::uint16_t>(data_[pos_] << 8 | data_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  std::optional<std::uint32_t> u32() {
    if (remaining() < 4) return std::nullopt;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | data_[pos_++];
    return v;
  }
  // QUIC variable-length integer (RFC 9000 16): the top two bits of the first byte give the
  // length, 1, 2, 4 or 8 bytes.
  std::optional<std::uint64_t> varint() {
    if (remaining() < 1) return std::nullopt;
    std::size_t n = std::size_t{1} << (data_[pos_] >> 6);
    if (remaining() < n) return std::nullopt;
    std::uint64_t v = data_[pos_++] & 0x3f;
    for (std::size_t i = 1; i < n; ++i) v = v << 8 | data_[pos_++];
    return v;
  }
  std::optional<std::span<const std::uint8_t>> bytes(std::size_t n) {
    if (remaining() < n) return std::nullopt;
    auto s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  // A vector with an 8- or 16-bit length prefix (RFC 8446 3.4).
  std::optional<std::span<const std::uint8_t>> vec8() {
    auto n = u8();
    if (!n) return std::nullopt;
    return bytes(*n);
  }
  std::optional<std::span<const std::uint8_t>> vec16() {
    auto n = u16();
    if (!n) return std::nullopt;
    return bytes(*n);
  }

 private:
  std::span<const std::uint8_t> data_;
  std::size_t pos_ = 0;
};

}  // namespace snigate::parser
