#include "forward/proxy_auth.h"

#include <stdexcept>

#include <boost/beast/core/detail/base64.hpp>

namespace snigate::forward {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// Timing must not tell a client how much of a secret it guessed right.
bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

std::string base64(std::string_view text) {
  namespace b64 = boost::beast::detail::base64;
  std::string out(b64::encoded_size(text.size()), '\0');
  out.resize(b64::encode(out.data(), text.data(), text.size()));
  return out;
}

}  // namespace

ProxyAuth ProxyAuth::parse(std::string_view spec) {
  ProxyAuth auth;
  if (spec.empty()) return auth;
  auto colon = spec.find(':');
  auto scheme = spec.substr(0, colon);
  auto rest = colon == std::string_view::npos ? std::string_view{} : spec.substr(colon + 1);
  if (scheme == "basic") {
    auto sep = rest.find(':');
    if (sep == std::string_view::npos || sep == 0)
      throw std::invalid_argument("auth \"basic:USER:PASS\" needs a user and a password");
    auth.kind_ = Kind::Basic;
    auth.credentials_ = base64(rest);
  } else if (scheme == "token") {
    if (rest.empty()) throw std::invalid_argument("auth \"token:SECRET\" needs a secret");
    for (char c : rest)
      if (c <= 0x20 || c >= 0x7f)
        throw std::invalid_argument("auth token must be visible ASCII without spaces");
    auth.kind_ = Kind::Token;
    auth.credentials_ = std::string(rest);
  } else {
    throw std::invalid_argument("auth must be \"basic:USER:PASS\" or \"token:SECRET\", not '" +
                                std::string(scheme) + ":...'");
  }
  return auth;
}

bool ProxyAuth::accepts(const std::string* header) const {
  if (kind_ == Kind::None) return true;
  if (!header) return false;
  std::string_view value = *header;
  auto space = value.find(' ');
  if (space == std::string_view::npos) return false;
  auto scheme = value.substr(0, space);
  auto credentials = value.substr(space + 1);
  while (!credentials.empty() && (credentials.front() == ' ' || credentials.front() == '\t'))
    credentials.remove_prefix(1);
  while (!credentials.empty() && (credentials.back() == ' ' || credentials.back() == '\t'))
    credentials.remove_suffix(1);
  if (!iequals(scheme, kind_ == Kind::Basic ? "Basic" : "Bearer")) return false;
  return constant_time_equal(credentials, credentials_);
}

std::string ProxyAuth::challenge() const {
  return kind_ == Kind::Token ? "Bearer realm=\"snigate\"" : "Basic realm=\"snigate\"";
}

}  // namespace snigate::forward
