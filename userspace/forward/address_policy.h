#pragma once
// Where a forwarded connection may go once its name has resolved. By default nothing inside:
// loopback, link-local, private and shared address space, multicast, reserved ranges and the
// daemon's own addresses are refused, so a crafted SNI or a hostile DNS answer cannot reach the
// gateway's network. `allow_private` opens the special ranges; the host itself (all of
// 127.0.0.0/8 and ::1, and every address the kernel calls local at the moment of the connect,
// so one added after start too) opens only through an explicit allow-list entry, since reaching
// it loops back into the host's own services.
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "forward/allow_list.h"
#include "net/local_address.h"

namespace snigate::forward {

enum class AddressClass {
  Public,
  Unspecified,  // 0.0.0.0/8, ::
  Loopback,     // 127/8, ::1
  LinkLocal,    // 169.254/16, fe80::/10
  Private,      // RFC 1918, 100.64/10 (RFC 6598), fc00::/7, fec0::/10
  Multicast,    // 224/4, ff00::/8
  Reserved,     // 240/4 and broadcast, 192.0.0/24, 198.18/15, documentation ranges
};
const char* to_string(AddressClass c);

// The range an address falls in. Addresses that carry an IPv4 address are judged by it:
// IPv4-mapped (::ffff:0:0/96), IPv4-translated (::ffff:0:0:0/96, RFC 2765), IPv4-compatible,
// NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48 of RFC 8215), 6to4 (2002::/16) and
// Teredo (2001::/32: its server and its client, RFC 4380).
AddressClass classify(const boost::asio::ip::address& address);

struct AddressPolicy {
  bool allow_private = false;
  std::vector<boost::asio::ip::address> own;  // the listen addresses, besides what the kernel says
  // Asked at each check, so addresses added after start count (a fake in tests).
  bool (*is_local)(const boost::asio::ip::address&) = net::is_local_address;
};

struct AddressVerdict {
  bool allowed = false;
  std::string reason;  // why refused: "loopback", "private", "own address", ...
};

AddressVerdict check_address(const boost::asio::ip::address& address, const AllowList& allow,
                             const AddressPolicy& policy);

}  // namespace snigate::forward
