#pragma once
// Which backend a connection reaches, for one [table.X]. Built once per (re)load, then read
// concurrently by every worker: route() is const and thread-safe.
//
// Precedence, the one users read in the README: the table's [[rule]]s first, in file order,
// the first whose every condition holds (name, offered ALPN, client address); then the name
// entries: exact, the longest wildcard ("*.a.b" matches any depth below a.b, not a.b itself),
// regexes in file order, then default. A connection without a name: rules without a name
// condition, then no_sni if set, else default.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "config/config.h"

namespace snigate::routing {

// What a connection offers to route on.
struct RouteQuery {
  std::string_view name;                          // SNI or Host, any case, maybe a trailing dot
  const std::vector<std::string>* alpn = nullptr;  // offered protocols; none for http
  std::optional<boost::asio::ip::address> client;  // the real client (PROXY header if trusted)
};

// The answer: backend nullptr when nothing matches. `rule` names what chose it, for the access
// log and `snigatectl conns`: "rule#2", "exact", "*.example.org", "~regex", "default", "no_sni".
struct RouteMatch {
  const std::string* backend = nullptr;
  const std::string* rule = nullptr;
  const config::RouteRule* matched_rule = nullptr;  // the [[rule]] when one chose it
};

class RouteTable {
 public:
  // ConfigError at the entry's file:line on a regex PCRE2 refuses.
  static RouteTable build(const config::TableConfig& table);

  RouteMatch route(const RouteQuery& query) const;
  // By name alone (no ALPN, no client address): the backend, nullptr when nothing matches.
  const std::string* lookup(std::string_view name) const {
    return route({name, nullptr, std::nullopt}).backend;
  }
  // How many regex matches gave up at the match limit (config::kRouteMatchLimit), each
  // logged with rising spacing: a regex that gives up does not match, so a lookup is bounded.
  std::uint64_t regex_limit_hits() const;

  RouteTable(RouteTable&&) noexcept;
  RouteTable& operator=(RouteTable&&) noexcept;
  ~RouteTable();

 private:
  RouteTable();
  struct Regex;
  struct Rule;
  struct Wildcard {
    std::string backend;
    std::string label;  // "*.suffix"
  };
  static std::unique_ptr<Regex> compile(const config::RouteEntry& entry);
  static void note_limit_hit(Regex& re, std::string_view name);
  bool regex_matches(Regex& re, const std::string& name) const;
  bool rule_matches(const Rule& rule, const std::string& name, const RouteQuery& query) const;
  std::optional<std::uint32_t> first_rule(const std::string& name, const RouteQuery& query) const;

  std::unordered_map<std::string, std::string> exact_;
  std::unordered_map<std::string, Wildcard> wildcard_;  // key: suffix without "*."
  std::vector<std::unique_ptr<Regex>> regexes_;
  std::optional<std::string> default_;
  std::optional<std::string> no_sni_;
  // Rules, indexed by their name condition so a thousand rules cost a hash lookup or two:
  // the candidates are the rules of the exact name, of each wildcard suffix, and the rest
  // (regex or no name); each list ascends in file order and the smallest match wins.
  struct Hash {
    using is_transparent = void;  // looked up by string_view: no string per dot of the name
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using RuleIndex = std::unordered_map<std::string, std::vector<std::uint32_t>, Hash, std::equal_to<>>;
  std::vector<std::unique_ptr<Rule>> rules_;
  RuleIndex exact_rules_;
  RuleIndex wildcard_rules_;
  std::vector<std::uint32_t> other_rules_;
  // Labels for the name entries' matches (the rules carry their own).
  std::string exact_label_ = "exact", default_label_ = "default", no_sni_label_ = "no_sni";
};

}  // namespace snigate::routing
