#pragma once
// An address or CIDR prefix, IPv4 or IPv6: bans, trusted proxies, ignoreip and allow-lists
// all speak in these. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are treated as IPv4, since
// a dual-stack listener reports IPv4 clients that way.
#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>

namespace snigate::net {

class Prefix {
 public:
  // "192.0.2.1", "192.0.2.0/24", "2001:db8::/32", "[2001:db8::1]", "::ffff:192.0.2.1".
  // Host bits beyond the prefix are an error ("192.0.2.1/24"), so a typo cannot widen a ban.
  static std::optional<Prefix> parse(std::string_view text, std::string* error = nullptr);
  // A single address, /32 or /128.
  static Prefix host(const boost::asio::ip::address& address);
  // The prefix of `address` with the given length, host bits cleared (ban_prefix_v6 = 64).
  static Prefix covering(const boost::asio::ip::address& address, unsigned length);

  bool contains(const boost::asio::ip::address& address) const;
  bool contains(const Prefix& other) const;
  bool is_v4() const { return v4_; }
  bool is_host() const { return length_ == (v4_ ? 32u : 128u); }
  unsigned length() const { return length_; }
  // Network byte order; IPv4 uses the first 4 bytes.
  const std::array<std::uint8_t, 16>& bytes() const { return bytes_; }
  boost::asio::ip::address address() const;
  // "192.0.2.1" for a host, "192.0.2.0/24" otherwise.
  std::string str() const;

  auto operator<=>(const Prefix&) const = default;

 private:
  bool v4_ = true;
  unsigned length_ = 0;
  std::array<std::uint8_t, 16> bytes_{};
};

// Whether any of `prefixes` contains `address`: allow-lists, trusted proxies, ignoreip, rules.
bool contains_any(std::span<const Prefix> prefixes, const boost::asio::ip::address& address);

// IPv4-mapped IPv6 addresses as plain IPv4; others unchanged.
boost::asio::ip::address unmap(const boost::asio::ip::address& address);

}  // namespace snigate::net
