#include "routing/rule_check.h"

#include <algorithm>

namespace snigate::routing {

namespace {

using Kind = config::RouteEntry::Kind;

bool below(const std::string& name, const std::string& suffix) {
  return name.size() > suffix.size() + 1 && name.ends_with(suffix) &&
         name[name.size() - suffix.size() - 1] == '.';
}

// Every name `later` matches, `earlier` matches too. Regexes are compared as written only.
bool covers(const std::optional<config::RouteEntry>& earlier,
            const std::optional<config::RouteEntry>& later) {
  if (!earlier) return true;
  if (!later) return false;
  if (earlier->kind == Kind::Wildcard && later->kind != Kind::Regex)
    return below(later->pattern, earlier->pattern) ||
           (later->kind == Kind::Wildcard && later->pattern == earlier->pattern);
  return earlier->kind == later->kind && earlier->pattern == later->pattern;
}

bool covers(const std::vector<std::string>& earlier, const std::vector<std::string>& later) {
  if (earlier.empty()) return true;
  if (later.empty()) return false;
  return std::all_of(later.begin(), later.end(), [&](const std::string& a) {
    return std::find(earlier.begin(), earlier.end(), a) != earlier.end();
  });
}

bool covers(const std::vector<net::Prefix>& earlier, const std::vector<net::Prefix>& later) {
  if (earlier.empty()) return true;
  if (later.empty()) return false;
  return std::all_of(later.begin(), later.end(), [&](const net::Prefix& p) {
    return std::any_of(earlier.begin(), earlier.end(),
                       [&](const net::Prefix& e) { return e.contains(p); });
  });
}

std::string where(const config::RouteRule& rule, const std::string& table, std::size_t index) {
  return config::ConfigError(rule.where, "[table." + table + "] rule#" +
                                             std::to_string(index + 1) + " (" +
                                             config::describe(rule) + ") ")
      .what();
}

}  // namespace

std::vector<std::string> unreachable_rules(const config::Config& c) {
  std::vector<std::string> out;
  for (const auto& [name, table] : c.tables) {
    bool tls = false, http = false;
    for (const auto& l : c.listeners) {
      if (l.table != name) continue;
      (l.protocol == config::Protocol::Http ? http : tls) = true;
    }
    for (std::size_t j = 0; j < table.rules.size(); ++j) {
      const auto& later = table.rules[j];
      if (http && !tls && !later.alpn.empty()) {
        out.push_back(where(later, name, j) +
                      "never matches: it needs an ALPN protocol, and only http listeners use "
                      "this table (an HTTP request offers none)");
        continue;
      }
      for (std::size_t i = 0; i < j; ++i) {
        const auto& earlier = table.rules[i];
        if (covers(earlier.name, later.name) && covers(earlier.alpn, later.alpn) &&
            covers(earlier.client, later.client)) {
          out.push_back(where(later, name, j) + "never matches: rule#" + std::to_string(i + 1) +
                        " (" + config::describe(earlier) +
                        ") comes first and takes every connection it would; move it above, or "
                        "remove it");
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace snigate::routing
