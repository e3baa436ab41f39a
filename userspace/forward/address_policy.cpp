#include "forward/address_policy.h"

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
    Range{"192.88.99.0/24", AddressClass::Reserved},  // 6to4 relay anycast (RFC 7526)
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

// The more inside of two classes an address carries (Teredo names two IPv4 hosts).
AddressClass inner(AddressClass a, AddressClass b) { return a == AddressClass::Public ? b : a; }

AddressClass classify_embedded(const ip::address_v6::bytes_type& b, bool& embeds) {
  embeds = true;
  // ::a.b.c.d (deprecated IPv4-compatible, RFC 4291 2.5.5.1), except :: and ::1 themselves.
  if (all_zero(b, 0, 12) && !all_zero(b, 12, 15)) return classify(v4_at(b, 12));
  // ::ffff:0:a.b.c.d, IPv4-translated (RFC 2765 2.1).
  if (all_zero(b, 0, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0)
    return classify(v4_at(b, 12));
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) {
    // 64:ff9b::/96 (RFC 6052). 64:ff9b:1::/48 (RFC 8215) is split by operators at any RFC 6052
    // length; the /96 and /48 positions that hold an address are judged both, the more
    // inside one wins.
    if (all_zero(b, 4, 12)) return classify(v4_at(b, 12));
    if (b[4] == 0x00 && b[5] == 0x01) {
      ip::address_v4 at48(ip::address_v4::bytes_type{b[6], b[7], b[9], b[10]});
      if (at48.to_uint() == 0) return classify(v4_at(b, 12));
      if (all_zero(b, 12, 16)) return classify(at48);
      return inner(classify(v4_at(b, 12)), classify(at48));
    }
  }
  if (b[0] == 0x20 && b[1] == 0x02) return classify(v4_at(b, 2));  // 6to4, RFC 3056
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00) {
    // Teredo (RFC 4380 4): the server's IPv4 in bits 32-63, the client's inverted in the last 32.
    auto client = v4_at(b, 12);
    client = ip::address_v4(~client.to_uint());
    return inner(classify(client), classify(v4_at(b, 4)));
  }
  embeds = false;
  return AddressClass::Public;
}

}  // namespace

AddressClass classify(const ip::address& raw) {
  auto address = net::unmap(raw);
  if (address.is_v6()) {
    bool embeds = false;
    auto cls = classify_embedded(address.to_v6().to_bytes(), embeds);
    if (embeds) return cls;
  }
  for (const auto& [prefix, cls] : table())
    if (prefix.contains(address)) return cls;
  return AddressClass::Public;
}

AddressVerdict check_address(const ip::address& raw, const AllowList& allow,
                             const AddressPolicy& policy) {
  auto address = net::unmap(raw);
  if (allow.matches_address(address)) return {true, {}};
  auto cls = classify(address);
  // Connecting to 0.0.0.0 or :: reaches the host itself, any 127.x.y.z and ::1 are the host's
  // own (the kernel routes all of 127/8 to lo), and TCP has no multicast: never opened by
  // allow_private, only by an allow entry.
  bool openable = cls != AddressClass::Unspecified && cls != AddressClass::Multicast &&
                  cls != AddressClass::Loopback;
  if (!openable) return {false, to_string(cls)};
  auto own = std::any_of(policy.own.begin(), policy.own.end(),
                         [&](const ip::address& a) { return net::unmap(a) == address; });
  if (own || (policy.is_local && policy.is_local(address))) return {false, "own address"};
  if (cls == AddressClass::Public) return {true, {}};
  if (policy.allow_private) return {true, {}};
  return {false, to_string(cls)};
}

}  // namespace snigate::forward
