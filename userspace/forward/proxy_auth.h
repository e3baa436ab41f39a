#pragma once
// Per-listener client authentication of a CONNECT proxy, from the listener's `auth` key:
//   ""                   no authentication
//   "basic:USER:PASS"    Proxy-Authorization: Basic base64(USER:PASS)   (curl --proxy-user)
//   "token:SECRET"       Proxy-Authorization: Bearer SECRET
// A missing or wrong credential is a 407 carrying the matching Proxy-Authenticate challenge.
#include <string>
#include <string_view>

namespace snigate::forward {

class ProxyAuth {
 public:
  enum class Kind { None, Basic, Token };

  // Throws std::invalid_argument saying which form was expected.
  static ProxyAuth parse(std::string_view spec);

  Kind kind() const { return kind_; }
  // `header` is the Proxy-Authorization value, or nullptr when the request has none. The
  // scheme is compared case-insensitively (RFC 9110 11.1), the credentials in constant time.
  bool accepts(const std::string* header) const;
  // The Proxy-Authenticate value of a 407: `Basic realm="snigate"` or `Bearer realm="snigate"`.
  std::string challenge() const;

 private:
  Kind kind_ = Kind::None;
  std::string credentials_;  // what must follow the scheme: base64(USER:PASS) or SECRET
};

}  // namespace snigate::forward
