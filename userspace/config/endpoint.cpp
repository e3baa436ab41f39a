#include "config/endpoint.h"

#include <algorithm>
#include <charconv>

namespace snigate::config {
namespace {

using boost::asio::ip::address;

bool is_v6_literal(std::string_view text) {
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(std::string(text), ec);
  return !ec && a.is_v6();
}

std::optional<std::uint16_t> parse_port(std::string_view text, bool allow_zero) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return std::nullopt;
  if (value == 0 && !allow_zero) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

}  // namespace

std::optional<HostPort> split_host_port(std::string_view text, bool allow_zero, std::string* error) {
  auto bad = [&](std::string message) -> std::optional<HostPort> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };
  const std::string_view port_hint = allow_zero ? "a port from 0 to 65535" : "a port from 1 to 65535";
  std::string_view host, port;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos) return bad("missing ']' after the IPv6 address");
    host = text.substr(1, close - 1);
    if (!is_v6_literal(host)) return bad("'" + std::string(host) + "' is not an IPv6 address");
    if (close + 1 >= text.size() || text[close + 1] != ':')
      return bad("needs a port after the address, such as \"[" + std::string(host) + "]:443\"");
    port = text.substr(close + 2);
  } else {
    if (std::count(text.begin(), text.end(), ':') > 1) {
      // Bare IPv6 with a port glued on after the last colon ("::1:443" is also a valid
      // address, but nobody listens on it on purpose), or with no port at all.
      auto last = text.rfind(':');
      if (is_v6_literal(text.substr(0, last)) && parse_port(text.substr(last + 1), true))
        return bad("IPv6 addresses go in brackets: did you mean \"[" +
                   std::string(text.substr(0, last)) + "]" + std::string(text.substr(last)) +
                   "\"?");
      if (is_v6_literal(text))
        return bad("needs a port; IPv6 addresses go in brackets: did you mean \"[" +
                   std::string(text) + "]:443\"?");
      return bad("not an address:port; IPv6 is written \"[2001:db8::1]:443\"");
    }
    auto colon = text.find(':');
    if (colon == std::string_view::npos) {
      if (!text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return bad("needs an address as well as the port: did you mean \"0.0.0.0:" +
                   std::string(text) + "\" (every IPv4 address) or \"127.0.0.1:" +
                   std::string(text) + "\"?");
      return bad("needs a port, such as \"" + std::string(text) + ":443\"");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.empty() || host == "*")
      return bad("needs an address before the port: did you mean \"0.0.0.0:" + std::string(port) +
                 "\" (every IPv4 address) or \"[::]:" + std::string(port) + "\"?");
  }
  auto p = parse_port(port, allow_zero);
  if (!p) return bad("'" + std::string(port) + "' is not " + std::string(port_hint));
  return HostPort{std::string(host), *p};
}

std::optional<boost::asio::ip::tcp::endpoint> parse_listen_address(std::string_view text,
                                                                   std::string* error) {
  auto hp = split_host_port(text, true, error);
  if (!hp) return std::nullopt;
  boost::system::error_code ec;
  address a = boost::asio::ip::make_address(hp->host, ec);
  if (ec) {
    if (error) {
      if (hp->host == "localhost")
        *error = "listen needs an IP address: did you mean \"127.0.0.1:" +
                 std::to_string(hp->port) + "\" or \"[::1]:" + std::to_string(hp->port) + "\"?";
      else
        *error = "listen needs an IP address, not '" + hp->host + "' (such as \"0.0.0.0:" +
                 std::to_string(hp->port) + "\")";
    }
    return std::nullopt;
  }
  return boost::asio::ip::tcp::endpoint(a, hp->port);
}

std::string format_endpoint(const boost::asio::ip::tcp::endpoint& endpoint) {
  std::string host = endpoint.address().to_string();
  if (endpoint.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(endpoint.port());
}

}  // namespace snigate::config
