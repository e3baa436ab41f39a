#pragma once
// PROXY protocol v1 and v2 (haproxy doc/proxy-protocol.txt): decode an incoming header from a
// trusted proxy, encode the one sent to a backend. Pure functions over byte spans.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "parser/status.h"

namespace snigate::parser {

struct ProxyHeader {
  bool local = false;              // v2 LOCAL / v1 UNKNOWN: no address information
  boost::asio::ip::tcp::endpoint source, destination;
  std::optional<std::string> authority;   // PP2_TYPE_AUTHORITY (0x02)
  std::optional<std::string> alpn;        // PP2_TYPE_ALPN (0x01)
  int version = 0;                 // 1 or 2
};

struct ProxyDecode {
  Status status = Status::NeedMore;
  ProxyHeader header;
  std::size_t consumed = 0;        // header length; bytes after it belong to the client stream
  std::string error;
};

// v1 or v2, size-bounded (v1: 107 bytes, v2: 16 + 65535), rejects anything else.
ProxyDecode decode_proxy_header(std::span<const std::uint8_t> data);

// Both endpoints are brought to one family (IPv4-mapped IPv6 unmapped, or IPv4 mapped when
// the other side is truly IPv6), as the spec requires one family per header.
std::string encode_proxy_v1(const boost::asio::ip::tcp::endpoint& source,
                            const boost::asio::ip::tcp::endpoint& destination);
std::vector<std::uint8_t> encode_proxy_v2(const boost::asio::ip::tcp::endpoint& source,
                                          const boost::asio::ip::tcp::endpoint& destination,
                                          std::string_view authority = {},
                                          std::string_view alpn = {});

}  // namespace snigate::parser
