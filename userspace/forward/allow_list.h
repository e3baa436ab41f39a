#pragma once
// Which destinations a forwarding listener or backend may reach. Entries, as written in the
// config's `allow = [...]`:
//   "api.example.com"   exact name (case-insensitive, a trailing dot ignored)
//   "*.example.com"     any name below example.com, at any depth, but not example.com itself
//   "~^api[0-9]+\.x$"   PCRE2 regex over the whole name (anchored both ends, caseless)
//   "203.0.113.7", "198.51.100.0/24", "2001:db8::/32"   addresses and CIDRs
// An empty list allows nothing: the forward modes are never an open proxy.
// Names are checked before DNS: a requested name needs a name entry. Address and CIDR entries
// do two things: they allow IP-literal destinations, and they exempt the addresses they cover
// from the address policy after resolution (that is how a listed name may reach an inside
// address). They never let an unlisted name through. See forwarder.h for the whole sequence.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "net/prefix.h"

namespace snigate::forward {

class AllowList {
 public:
  AllowList();
  ~AllowList();
  AllowList(const AllowList&);
  AllowList& operator=(const AllowList&);
  AllowList(AllowList&&) noexcept;
  AllowList& operator=(AllowList&&) noexcept;

  // Throws std::invalid_argument naming the bad entry and what is wrong with it.
  static AllowList compile(const std::vector<std::string>& entries);

  bool empty() const;
  bool has_names() const;
  bool has_addresses() const;
  // `name` as requested (SNI, CONNECT host); an IP literal never matches a name pattern.
  bool matches_name(std::string_view name) const;
  // An address or CIDR entry covers `address` (IPv4-mapped treated as IPv4).
  bool matches_address(const boost::asio::ip::address& address) const;

 private:
  struct Regex;
  std::vector<std::string> exact_;
  std::vector<std::string> suffixes_;  // "*.example.com" stored as ".example.com"
  std::vector<std::shared_ptr<const Regex>> regexes_;
  std::vector<net::Prefix> prefixes_;
};

// Lower-cases and strips one trailing dot: the form names are compared in.
std::string normalize_name(std::string_view name);

}  // namespace snigate::forward
