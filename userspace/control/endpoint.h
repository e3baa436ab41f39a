#pragma once
// "host:port" text as the config and snigatectl write it, both ways.
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

namespace snigate::control {

struct HostPort {
  std::string host;  // brackets of an IPv6 literal removed
  unsigned short port = 0;
};

// "192.0.2.1:7443", "[2001:db8::1]:7443", "edge.example:7443". The port is required.
std::optional<HostPort> split_host_port(std::string_view text, std::string* error = nullptr);
// A literal address and port, no name resolution.
std::optional<boost::asio::ip::tcp::endpoint> parse_endpoint(std::string_view text,
                                                             std::string* error = nullptr);
// "192.0.2.1:7443", "[2001:db8::1]:7443".
std::string to_string(const boost::asio::ip::tcp::endpoint& endpoint);

}  // namespace snigate::control
