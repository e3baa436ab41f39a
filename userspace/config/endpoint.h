#pragma once
// "HOST:PORT" as written in the config: listen addresses and server addresses share the
// splitting rules ("[v6]:port"), and errors suggest the form the user probably meant.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

namespace snigate::config {

struct HostPort {
  std::string host;  // without brackets
  std::uint16_t port = 0;
};

// "192.0.2.1:443", "[2001:db8::1]:443", "name.example:443". Port 0 is refused unless
// allow_zero. On failure returns nullopt and sets *error, with a suggestion where one fits.
std::optional<HostPort> split_host_port(std::string_view text, bool allow_zero, std::string* error);

// A listen address: an IP literal and a port (0: ephemeral). Names are refused ("localhost"
// suggests 127.0.0.1), so what is bound never depends on DNS.
std::optional<boost::asio::ip::tcp::endpoint> parse_listen_address(std::string_view text,
                                                                   std::string* error);

// "192.0.2.1:443" or "[2001:db8::1]:443".
std::string format_endpoint(const boost::asio::ip::tcp::endpoint& endpoint);

}  // namespace snigate::config
