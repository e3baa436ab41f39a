#pragma once
// Ethernet frames for BPF_PROG_TEST_RUN, built field by field (after Katran's test packet
// builder) rather than kept as opaque blobs: MAC addresses, VLAN tags outermost first, then
// an IPv4 or IPv6 header and a TCP SYN, or another EtherType's payload. The frames only ever
// reach a program under test, never a link, so checksums are left zero (the ban program
// reads no checksum).
#include <linux/if_ether.h>
#include <netinet/in.h>

#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace snigate::vmtest {

class Frame {
 public:
  // An 802.1Q (ETH_P_8021Q) or 802.1ad (ETH_P_8021AD) tag after those already added.
  Frame& tag(std::uint16_t tpid, std::uint16_t vlan_id) {
    tags_.emplace_back(tpid, vlan_id);
    return *this;
  }
  // A TCP SYN from `source` to the ban vm-tests' edge (10.5.1.2 or fd00:5:1::2).
  Frame& from(const boost::asio::ip::address& source) {
    l3_.clear();
    if (source.is_v4()) {
      type_ = ETH_P_IP;
      push16(0x4500);                 // version 4, 20-byte header, no TOS
      push16(20 + kTcpHeader);        // total length
      push16(0);                      // id
      push16(0x4000);                 // don't fragment
      l3_.push_back(64);              // TTL
      l3_.push_back(IPPROTO_TCP);
      push16(0);                      // checksum
      push(source.to_v4().to_bytes());
      push(boost::asio::ip::make_address_v4("10.5.1.2").to_bytes());
    } else {
      type_ = ETH_P_IPV6;
      push16(0x6000);                 // version 6, no traffic class
      push16(0);                      // no flow label
      push16(kTcpHeader);             // payload length
      l3_.push_back(IPPROTO_TCP);     // next header
      l3_.push_back(64);              // hop limit
      push(source.to_v6().to_bytes());
      push(boost::asio::ip::make_address_v6("fd00:5:1::2").to_bytes());
    }
    ip_end_ = l3_.size();
    for (std::uint16_t v : std::initializer_list<std::uint16_t>{40000, 443,  // ports
                            0, 1, 0, 0,      // seq 1, ack 0
                            0x5002, 65535,   // 20-byte header, SYN; window
                            0, 0})           // checksum, urgent pointer
      push16(v);
    return *this;
  }
  // A frame of another EtherType (ARP, LLDP, ...) whose payload is `payload`.
  Frame& ethertype(std::uint16_t type, std::vector<std::uint8_t> payload) {
    type_ = type;
    l3_ = std::move(payload);
    ip_end_ = 0;
    return *this;
  }

  std::vector<std::uint8_t> bytes() const {
    std::vector<std::uint8_t> out = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
    for (auto [tpid, vlan_id] : tags_) {
      put16(out, tpid);
      put16(out, vlan_id & 0x0fff);  // priority 0, DEI 0
    }
    put16(out, type_);
    out.insert(out.end(), l3_.begin(), l3_.end());
    return out;
  }
  // Where the IP header ends: the least length at which the program can read the source.
  std::size_t ip_header_end() const { return kMacs + 4 * tags_.size() + 2 + ip_end_; }

 private:
  static constexpr std::size_t kMacs = 12;
  static constexpr std::uint16_t kTcpHeader = 20;
  static void put16(std::vector<std::uint8_t>& out, std::uint16_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v));
  }
  void push16(std::uint16_t v) { put16(l3_, v); }
  template <typename Bytes>
  void push(const Bytes& b) {
    l3_.insert(l3_.end(), b.begin(), b.end());
  }

  std::vector<std::pair<std::uint16_t, std::uint16_t>> tags_;
  std::uint16_t type_ = ETH_P_IP;
  std::vector<std::uint8_t> l3_;
  std::size_t ip_end_ = 0;
};

}  // namespace snigate::vmtest
