#include "control/endpoint.h"

#include <charconv>

namespace snigate::control {

namespace {
bool set_error(std::string* error, std::string message) {
  if (error) *error = std::move(message);
  return false;
}
}  // namespace

std::optional<HostPort> split_host_port(std::string_view text, std::string* error) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    set_error(error, "'" + std::string(text) + "' needs HOST:PORT, e.g. 192.0.2.1:7443 or [2001:db8::1]:7443");
    return std::nullopt;
  }
  std::string_view host = text.substr(0, colon), port_text = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.back() != ']') {
      set_error(error, "'" + std::string(text) + "': unbalanced '[' in IPv6 address");
      return std::nullopt;
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    set_error(error, "'" + std::string(text) + "': write an IPv6 address in brackets, e.g. [::1]:7443");
    return std::nullopt;
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port_text.empty() ||
      port > 65535) {
    set_error(error, "'" + std::string(text) + "': port must be a number from 0 to 65535");
    return std::nullopt;
  }
  return HostPort{std::string(host), static_cast<unsigned short>(port)};
}

std::optional<boost::asio::ip::tcp::endpoint> parse_endpoint(std::string_view text,
                                                             std::string* error) {
  auto hp = split_host_port(text, error);
  if (!hp) return std::nullopt;
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(hp->host, ec);
  if (ec) {
    set_error(error, "'" + std::string(text) + "': '" + hp->host + "' is not an IP address");
    return std::nullopt;
  }
  return boost::asio::ip::tcp::endpoint(address, hp->port);
}

std::string to_string(const boost::asio::ip::tcp::endpoint& endpoint) {
  auto address = endpoint.address().to_string();
  if (endpoint.address().is_v6()) address = "[" + address + "]";
  return address + ":" + std::to_string(endpoint.port());
}

}  // namespace snigate::control
