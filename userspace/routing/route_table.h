#pragma once
// SNI/Host → backend name for one [table.X]. Built once per (re)load, then read concurrently
// by every worker: lookup() is const and thread-safe.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"

namespace snigate::routing {

class RouteTable {
 public:
  // ConfigError at the entry's file:line on a regex PCRE2 refuses.
  static RouteTable build(const config::TableConfig& table);

  // name: SNI or Host, any case, maybe a trailing dot; empty means the client sent no name.
  // Precedence: exact, then the longest wildcard ("*.a.b" matches any depth below a.b, not
  // a.b itself), then regexes in file order, then default. No name: no_sni if set, else
  // default. Returns the backend name, nullptr when nothing matches.
  // A regex gives up after config::kRouteMatchLimit steps, so one lookup is bounded.
  const std::string* lookup(std::string_view name) const;
  // How many regex matches gave up at that limit (each logged with rising spacing).
  std::uint64_t regex_limit_hits() const;

  RouteTable(RouteTable&&) noexcept;
  RouteTable& operator=(RouteTable&&) noexcept;
  ~RouteTable();

 private:
  RouteTable();
  struct Regex;
  static void note_limit_hit(Regex& re, std::string_view name);
  std::unordered_map<std::string, std::string> exact_;
  std::unordered_map<std::string, std::string> wildcard_;  // key: suffix without "*."
  std::vector<std::unique_ptr<Regex>> regexes_;
  std::optional<std::string> default_;
  std::optional<std::string> no_sni_;
};

}  // namespace snigate::routing
