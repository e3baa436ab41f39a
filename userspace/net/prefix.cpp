#include "net/prefix.h"

#include <charconv>

namespace snigate::net {

namespace ip = boost::asio::ip;

ip::address unmap(const ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return ip::make_address_v4(ip::v4_mapped, address.to_v6());
  return address;
}

namespace {

void clear_host_bits(std::array<std::uint8_t, 16>& bytes, unsigned length, unsigned total) {
  for (unsigned bit = length; bit < total; ++bit) bytes[bit / 8] &= ~(0x80u >> (bit % 8));
}

bool host_bits_clear(const std::array<std::uint8_t, 16>& bytes, unsigned length, unsigned total) {
  auto copy = bytes;
  clear_host_bits(copy, length, total);
  return copy == bytes;
}

bool set_error(std::string* error, std::string message) {
  if (error) *error = std::move(message);
  return false;
}

}  // namespace

std::optional<Prefix> Prefix::parse(std::string_view text, std::string* error) {
  std::string_view addr_part = text;
  std::optional<unsigned> length;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    addr_part = text.substr(0, slash);
    auto len_text = text.substr(slash + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), value);
    if (ec != std::errc() || end != len_text.data() + len_text.size() || len_text.empty()) {
      set_error(error, "'" + std::string(text) + "': prefix length is not a number");
      return std::nullopt;
    }
    length = value;
  }
  if (addr_part.size() >= 2 && addr_part.front() == '[' && addr_part.back() == ']')
    addr_part = addr_part.substr(1, addr_part.size() - 2);
  boost::system::error_code ec;
  auto address = ip::make_address(std::string(addr_part), ec);
  if (ec) {
    set_error(error, "'" + std::string(text) + "' is not an IPv4 or IPv6 address or CIDR");
    return std::nullopt;
  }
  bool was_mapped = address.is_v6() && address.to_v6().is_v4_mapped();
  address = unmap(address);
  Prefix p = host(address);
  if (length) {
    unsigned total = p.v4_ ? 32 : 128;
    unsigned len = *length;
    if (was_mapped) {
      if (len < 96) {
        set_error(error, "'" + std::string(text) + "': a mapped IPv4 prefix needs a length of 96 or more");
        return std::nullopt;
      }
      len -= 96;
    }
    if (len > total) {
      set_error(error, "'" + std::string(text) + "': prefix length exceeds " + std::to_string(total));
      return std::nullopt;
    }
    if (!host_bits_clear(p.bytes_, len, total)) {
      set_error(error, "'" + std::string(text) + "' has bits set beyond /" + std::to_string(len) +
                           "; did you mean " + covering(address, len).str() + "?");
      return std::nullopt;
    }
    p.length_ = len;
  }
  return p;
}

Prefix Prefix::host(const ip::address& raw) {
  auto address = unmap(raw);
  Prefix p;
  p.v4_ = address.is_v4();
  if (p.v4_) {
    auto b = address.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), p.bytes_.begin());
    p.length_ = 32;
  } else {
    p.bytes_ = address.to_v6().to_bytes();
    p.length_ = 128;
  }
  return p;
}

Prefix Prefix::covering(const ip::address& address, unsigned length) {
  Prefix p = host(address);
  unsigned total = p.v4_ ? 32 : 128;
  p.length_ = std::min(length, total);
  clear_host_bits(p.bytes_, p.length_, total);
  return p;
}

bool Prefix::contains(const ip::address& address) const { return contains(host(address)); }

bool Prefix::contains(const Prefix& other) const {
  if (other.v4_ != v4_ || other.length_ < length_) return false;
  auto masked = other.bytes_;
  clear_host_bits(masked, length_, v4_ ? 32 : 128);
  return masked == bytes_;
}

bool contains_any(std::span<const Prefix> prefixes, const ip::address& address) {
  const Prefix host = Prefix::host(address);
  for (const auto& p : prefixes)
    if (p.contains(host)) return true;
  return false;
}

ip::address Prefix::address() const {
  if (v4_) return ip::address_v4(ip::address_v4::bytes_type{bytes_[0], bytes_[1], bytes_[2], bytes_[3]});
  return ip::address_v6(bytes_);
}

std::string Prefix::str() const {
  auto text = address().to_string();
  return is_host() ? text : text + "/" + std::to_string(length_);
}

}  // namespace snigate::net
