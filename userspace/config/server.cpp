#include "config/server.h"

#include <cctype>
#include <charconv>
#include <sstream>

#include <boost/asio/ip/address.hpp>

#include "config/endpoint.h"

namespace snigate::config {
namespace {

std::optional<unsigned> parse_count(std::string_view text, unsigned min, unsigned max) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max)
    return std::nullopt;
  return value;
}

// A host name as DNS allows, or an IP literal; keeps shell-ish typos out of the resolver.
bool plausible_host(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == ':'))
      return false;
  return true;
}

std::string_view unbracket(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
    return text.substr(1, text.size() - 2);
  return text;
}

}  // namespace

std::optional<ServerConfig> parse_server(std::string_view text, std::string* error) {
  auto bad = [&](std::string message) -> std::optional<ServerConfig> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };
  std::istringstream words{std::string(text)};
  std::string address;
  if (!(words >> address)) return bad("empty server; write \"HOST:PORT\" such as \"192.0.2.10:443\"");
  auto hp = split_host_port(address, false, error);
  if (!hp) return std::nullopt;
  if (!plausible_host(hp->host)) return bad("'" + hp->host + "' is not a host name or address");
  ServerConfig s;
  s.host = hp->host;
  s.port = hp->port;
  s.text = std::string(text);
  std::string option;
  while (words >> option) {
    auto eq = option.find('=');
    std::string_view name = std::string_view(option).substr(0, eq);
    std::string_view value = eq == std::string::npos ? "" : std::string_view(option).substr(eq + 1);
    if (option == "backup") {
      s.backup = true;
    } else if (name == "weight" && eq != std::string::npos) {
      auto w = parse_count(value, 1, 1000);
      if (!w) return bad("weight must be a whole number from 1 to 1000, not '" + std::string(value) + "'");
      s.weight = *w;
    } else if (name == "max_fails" && eq != std::string::npos) {
      auto m = parse_count(value, 0, 1000);
      if (!m) return bad("max_fails must be a whole number from 0 to 1000, not '" + std::string(value) + "'");
      s.max_fails = *m;
    } else if (name == "fail_timeout" && eq != std::string::npos) {
      try {
        s.fail_timeout = parse_duration(value);
      } catch (const std::invalid_argument& e) {
        return bad(std::string("fail_timeout: ") + e.what());
      }
      if (s.fail_timeout.count() == 0) return bad("fail_timeout must be more than zero");
    } else if (name == "source" && eq != std::string::npos) {
      boost::system::error_code ec;
      const auto source = boost::asio::ip::make_address(std::string(unbracket(value)), ec);
      if (ec) return bad("source must be an IP address, not '" + std::string(value) + "'");
      s.source = source;
    } else {
      return bad("unknown option '" + option +
                 "'; server options are weight=N, backup, max_fails=N, fail_timeout=DURATION, "
                 "source=ADDR");
    }
  }
  // A literal server of the other family could never be reached from the source; a host name
  // may resolve to both, and a connect uses its addresses of the source's family.
  boost::system::error_code ec;
  const auto literal = boost::asio::ip::make_address(s.host, ec);
  if (s.source && !ec && literal.is_v4() != s.source->is_v4())
    return bad("source " + s.source->to_string() + " and server " + s.host +
               " are not of the same address family");
  return s;
}

std::string address(const ServerConfig& server) {
  std::string text =
      (server.host.find(':') != std::string::npos ? "[" + server.host + "]" : server.host) + ":" +
      std::to_string(server.port);
  // The same server from two sources is two entries, with figures of their own.
  if (server.source) text += " source=" + server.source->to_string();
  return text;
}

}  // namespace snigate::config
