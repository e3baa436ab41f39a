#pragma once
// CrowdSec decisions as the Local API's stream endpoint sends them
// (GET /v1/decisions/stream: {"new": [...], "deleted": [...]}, either may be null), and which
// of them the bouncer takes. Pure: the bouncer feeds bodies in, tests feed captures.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/prefix.h"

namespace snigate::crowdsec {

struct Decision {
  std::int64_t id = 0;
  std::string origin;    // "cscli", "crowdsec", "CAPI", "lists", "snigate", ...
  std::string type;      // "ban", "captcha", ...
  std::string scope;     // "Ip", "Range", "Country", ...
  std::string value;     // "192.0.2.1", "2001:db8::/32"
  std::string scenario;  // "crowdsecurity/ssh-bf", "manual 'ban' from 'machine'"
  std::chrono::milliseconds duration{0};  // what is left of it when LAPI answered
};

struct StreamBody {
  std::vector<Decision> added;    // "new"
  std::vector<Decision> deleted;  // "deleted": lifted or expired
  std::size_t malformed = 0;      // entries without an id, value or a readable duration
};

// nullopt (and `error` set) when the body is not the stream's JSON object at all; entries it
// cannot read are counted in `malformed` and left out.
std::optional<StreamBody> parse_stream(std::string_view body, std::string& error);

// The prefix a decision's value names: an address for scope Ip, a CIDR for Range (host bits
// past the length are cleared, as CrowdSec stores ranges as written). nullopt for other
// scopes or an unreadable value.
std::optional<net::Prefix> decision_prefix(const Decision& d);

// The [crowdsec] filters: a decision is taken when its type is "ban", its scope is listed
// (case-insensitively: LAPI says "Ip", cscli accepts "ip"), its origin is listed (or none
// are), and its scenario contains one of `scenarios` (or none are).
struct DecisionFilter {
  std::vector<std::string> scopes{"Ip", "Range"};
  std::vector<std::string> origins;
  std::vector<std::string> scenarios;
  bool accepts(const Decision& d) const;
};

}  // namespace snigate::crowdsec
