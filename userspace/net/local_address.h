#pragma once
// Whether an address is this host's own, asked of the kernel each time it matters (a jail
// about to ban, a forward about to connect): addresses come and go after start (DHCP, SLAAC,
// `ip addr add`), so a list read once goes stale.
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace snigate::net {

// True when the kernel would deliver a packet to `address` locally: its route lookup answers
// RTN_LOCAL (the local table holds the interface addresses, all of 127.0.0.0/8 and any
// `ip route add local` range). IPv4-mapped addresses are looked up as IPv4. Without rtnetlink
// it falls back to loopback and interface_addresses().
bool is_local_address(const boost::asio::ip::address& address);

// The host's interface addresses now, read with getifaddrs(3).
std::vector<boost::asio::ip::address> interface_addresses();

}  // namespace snigate::net
