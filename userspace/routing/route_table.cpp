#include "routing/route_table.h"

#include <algorithm>
#include <atomic>
#include <cctype>

#include <spdlog/spdlog.h>

#include "config/route_regex.h"

namespace snigate::routing {

struct RouteTable::Regex {
  config::RouteRegex code;
  std::string backend;
  std::string pattern;
  std::atomic<std::uint64_t> limit_hits{0};
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

// A hit is no match (the next route is tried); it is counted, and logged at the 1st, 2nd,
// 4th, 8th... hit of each pattern, so a flood of crafted names cannot flood the log too.
void RouteTable::note_limit_hit(Regex& re, std::string_view name) {
  const std::uint64_t n = ++re.limit_hits;
  if ((n & (n - 1)) != 0) return;
  spdlog::warn("route regex \"~{}\" gave up on a name of {} bytes at the match limit ({} "
               "time(s) so far), so it did not match; a pattern with nested repeats such as "
               "(a+)+ backtracks without end on crafted names: rewrite it without them",
               re.pattern, name.size(), n);
}

std::uint64_t RouteTable::regex_limit_hits() const {
  std::uint64_t total = 0;
  for (const auto& re : regexes_) total += re->limit_hits.load(std::memory_order_relaxed);
  return total;
}

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
        auto re = std::make_unique<Regex>();
        re->code = std::move(code);
        re->backend = e.backend;
        re->pattern = e.pattern;
        t.regexes_.push_back(std::move(re));
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
                           0, 0, data, config::route_match_context());
      if (rc >= 0) return &re->backend;
      if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT) note_limit_hit(*re, name);
    }
  }
  return default_ ? &*default_ : nullptr;
}

}  // namespace snigate::routing
