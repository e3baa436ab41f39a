#include "routing/route_table.h"

#include <algorithm>
#include <cctype>

#include "config/route_regex.h"

namespace snigate::routing {

struct RouteTable::Regex {
  config::RouteRegex code;
  std::string backend;
};

namespace {

struct MatchDataFree {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

// One match block per thread: lookups run concurrently on every worker and only need to know
// whether a pattern matched, so a single ovector pair is enough.
pcre2_match_data* thread_match_data() {
  thread_local std::unique_ptr<pcre2_match_data, MatchDataFree> data(
      pcre2_match_data_create(1, nullptr));
  return data.get();
}

std::string normalize(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

RouteTable::RouteTable() = default;
RouteTable::RouteTable(RouteTable&&) noexcept = default;
RouteTable& RouteTable::operator=(RouteTable&&) noexcept = default;
RouteTable::~RouteTable() = default;

RouteTable RouteTable::build(const config::TableConfig& table) {
  RouteTable t;
  for (const auto& e : table.entries) {
    switch (e.kind) {
      case config::RouteEntry::Kind::Exact:
        t.exact_.emplace(normalize(e.pattern), e.backend);
        break;
      case config::RouteEntry::Kind::Wildcard:
        t.wildcard_.emplace(normalize(e.pattern), e.backend);
        break;
      case config::RouteEntry::Kind::Regex: {
        std::string error;
        auto code = config::compile_route_regex(e.pattern, &error);
        if (!code) throw config::ConfigError(e.where, "regex \"" + e.pattern + "\": " + error);
        // Without JIT (no executable memory, say) PCRE2 interprets: slower, same answers.
        pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE);
        t.regexes_.push_back(std::make_unique<Regex>(Regex{std::move(code), e.backend}));
        break;
      }
    }
  }
  t.default_ = table.default_backend;
  t.no_sni_ = table.no_sni_backend;
  return t;
}

const std::string* RouteTable::lookup(std::string_view raw) const {
  std::string name = normalize(raw);
  if (name.empty()) {
    if (no_sni_) return &*no_sni_;
    return default_ ? &*default_ : nullptr;
  }
  if (auto it = exact_.find(name); it != exact_.end()) return &it->second;
  // "*.a.b" is stored as "a.b"; the suffix after the first dot is the longest candidate, so
  // walking the dots left to right finds the longest matching wildcard first. The name itself
  // is never looked up here: a wildcard does not cover its apex.
  for (auto dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1)) {
    auto it = wildcard_.find(name.substr(dot + 1));
    if (it != wildcard_.end()) return &it->second;
  }
  if (!regexes_.empty()) {
    pcre2_match_data* data = thread_match_data();
    for (const auto& re : regexes_) {
      int rc = pcre2_match(re->code.get(), reinterpret_cast<PCRE2_SPTR>(name.data()), name.size(),
                           0, 0, data, nullptr);
      if (rc >= 0) return &re->backend;
    }
  }
  return default_ ? &*default_ : nullptr;
}

}  // namespace snigate::routing
