#pragma once
// Where a forwarded connection may go once its name has resolved. By default nothing inside:
// loopback, link-local, private and shared address space, multicast, reserved ranges and the
// daemon's own interface addresses are refused, so a crafted SNI or a hostile DNS answer cannot
// reach the gateway's network. `allow_private` opens the special ranges; the daemon's own
// addresses open only through an explicit allow-list entry, since reaching them loops back
// into the host itself.
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "forward/allow_list.h"

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

// The range an address falls in. IPv4-mapped, IPv4-compatible, NAT64 (64:ff9b::/96) and 6to4
// (2002::/16) addresses are judged by the IPv4 address they carry.
AddressClass classify(const boost::asio::ip::address& address);

// The host's own addresses, read with getifaddrs(3).
std::vector<boost::asio::ip::address> interface_addresses();

struct AddressPolicy {
  bool allow_private = false;
  std::vector<boost::asio::ip::address> own;  // usually interface_addresses()
};

struct AddressVerdict {
  bool allowed = false;
  std::string reason;  // why refused: "loopback", "private", "own address", ...
};

AddressVerdict check_address(const boost::asio::ip::address& address, const AllowList& allow,
                             const AddressPolicy& policy);

}  // namespace snigate::forward
