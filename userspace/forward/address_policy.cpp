#include "forward/address_policy.h"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstdint>

#include "net/prefix.h"

namespace snigate::forward {

namespace ip = boost::asio::ip;

const char* to_string(AddressClass c) {
  switch (c) {
    case AddressClass::Public: return "public";
    case AddressClass::Unspecified: return "unspecified";
    case AddressClass::Loopback: return "loopback";
    case AddressClass::LinkLocal: return "link-local";
    case AddressClass::Private: return "private";
    case AddressClass::Multicast: return "multicast";
    case AddressClass::Reserved: return "reserved";
  }
  return "?";
}

namespace {

struct Range {
  const char* cidr;
  AddressClass cls;
};

// IANA special-purpose registries (RFC 6890 and updates) that must not be reached from outside.
constexpr std::array kV4Ranges{
    Range{"0.0.0.0/8", AddressClass::Unspecified},    Range{"10.0.0.0/8", AddressClass::Private},
    Range{"100.64.0.0/10", AddressClass::Private},    Range{"127.0.0.0/8", AddressClass::Loopback},
    Range{"169.254.0.0/16", AddressClass::LinkLocal}, Range{"172.16.0.0/12", AddressClass::Private},
    Range{"192.0.0.0/24", AddressClass::Reserved},    Range{"192.0.2.0/24", AddressClass::Reserved},
    Range{"192.168.0.0/16", AddressClass::Private},   Range{"198.18.0.0/15", AddressClass::Reserved},
    Range{"198.51.100.0/24", AddressClass::Reserved}, Range{"203.0.113.0/24", AddressClass::Reserved},
    Range{"224.0.0.0/4", AddressClass::Multicast},    Range{"240.0.0.0/4", AddressClass::Reserved},
};
constexpr std::array kV6Ranges{
    Range{"::/128", AddressClass::Unspecified},     Range{"::1/128", AddressClass::Loopback},
    Range{"fe80::/10", AddressClass::LinkLocal},    Range{"fc00::/7", AddressClass::Private},
    Range{"fec0::/10", AddressClass::Private},      Range{"ff00::/8", AddressClass::Multicast},
    Range{"2001:db8::/32", AddressClass::Reserved}, Range{"100::/64", AddressClass::Reserved},
};

const std::vector<std::pair<net::Prefix, AddressClass>>& table() {
  static const auto ranges = [] {
    std::vector<std::pair<net::Prefix, AddressClass>> out;
    for (const auto& r : kV4Ranges) out.emplace_back(*net::Prefix::parse(r.cidr), r.cls);
    for (const auto& r : kV6Ranges) out.emplace_back(*net::Prefix::parse(r.cidr), r.cls);
    return out;
  }();
  return ranges;
}

ip::address_v4 v4_at(const ip::address_v6::bytes_type& b, std::size_t at) {
  return ip::address_v4(ip::address_v4::bytes_type{b[at], b[at + 1], b[at + 2], b[at + 3]});
}

bool all_zero(const ip::address_v6::bytes_type& b, std::size_t from, std::size_t to) {
  return std::all_of(b.begin() + from, b.begin() + to, [](auto x) { return x == 0; });
}

}  // namespace

AddressClass classify(const ip::address& raw) {
  auto address = net::unmap(raw);
  if (address.is_v6()) {
    auto b = address.to_v6().to_bytes();
    static const std::array<std::uint8_t, 12> nat64{0x00, 0x64, 0xff, 0x9b};
    // ::a.b.c.d (deprecated IPv4-compatible, RFC 4291 2.5.5.1), except :: and ::1 themselves.
    if (all_zero(b, 0, 12) && !all_zero(b, 12, 15)) return classify(v4_at(b, 12));
    if (std::equal(nat64.begin(), nat64.end(), b.begin())) return classify(v4_at(b, 12));
    if (b[0] == 0x20 && b[1] == 0x02) return classify(v4_at(b, 2));  // 6to4, RFC 3056
  }
  for (const auto& [prefix, cls] : table())
    if (prefix.contains(address)) return cls;
  return AddressClass::Public;
}

std::vector<ip::address> interface_addresses() {
  std::vector<ip::address> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (auto* it = list; it; it = it->ifa_next) {
    if (!it->ifa_addr) continue;
    if (it->ifa_addr->sa_family == AF_INET) {
      auto* sin = reinterpret_cast<const sockaddr_in*>(it->ifa_addr);
      out.push_back(ip::address_v4(ntohl(sin->sin_addr.s_addr)));
    } else if (it->ifa_addr->sa_family == AF_INET6) {
      auto* sin6 = reinterpret_cast<const sockaddr_in6*>(it->ifa_addr);
      ip::address_v6::bytes_type bytes;
      std::copy_n(sin6->sin6_addr.s6_addr, 16, bytes.begin());
      out.push_back(ip::address_v6(bytes));
    }
  }
  freeifaddrs(list);
  return out;
}

AddressVerdict check_address(const ip::address& raw, const AllowList& allow,
                             const AddressPolicy& policy) {
  auto address = net::unmap(raw);
  if (allow.matches_address(address)) return {true, {}};
  auto own = std::any_of(policy.own.begin(), policy.own.end(),
                         [&](const ip::address& a) { return net::unmap(a) == address; });
  if (own) return {false, "own address"};
  auto cls = classify(address);
  if (cls == AddressClass::Public) return {true, {}};
  // Connecting to 0.0.0.0 or :: reaches the host itself, and TCP has no multicast: never by
  // allow_private alone.
  bool openable = cls != AddressClass::Unspecified && cls != AddressClass::Multicast;
  if (policy.allow_private && openable) return {true, {}};
  return {false, to_string(cls)};
}

}  // namespace snigate::forward
