#include "routing/route_table.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <limits>

#include <spdlog/spdlog.h>

#include "config/route_regex.h"

namespace snigate::routing {

struct RouteTable::Regex {
  config::RouteRegex code;
  std::string backend;
  std::string pattern;
  std::string label;  // "~pattern"
  std::atomic<std::uint64_t> limit_hits{0};
};

struct RouteTable::Rule {
  config::RouteRule config;
  std::unique_ptr<Regex> name_regex;  // when the name condition is a regex
  std::string label;                  // "rule#N", N from 1 in file order
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

bool offers_any(const std::vector<std::string>* offered, const std::vector<std::string>& wanted) {
  if (!offered) return false;
  for (const auto& o : *offered)
    if (std::find(wanted.begin(), wanted.end(), o) != wanted.end()) return true;
  return false;
}

bool in_any(const std::optional<boost::asio::ip::address>& client,
            const std::vector<net::Prefix>& prefixes) {
  return client && net::contains_any(prefixes, *client);
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
  for (const auto& rule : rules_)
    if (rule->name_regex) total += rule->name_regex->limit_hits.load(std::memory_order_relaxed);
  return total;
}

RouteTable::RouteTable() = default;
RouteTable::RouteTable(RouteTable&&) noexcept = default;
RouteTable& RouteTable::operator=(RouteTable&&) noexcept = default;
RouteTable::~RouteTable() = default;

std::unique_ptr<RouteTable::Regex> RouteTable::compile(const config::RouteEntry& e) {
  std::string error;
  auto code = config::compile_route_regex(e.pattern, &error);
  if (!code) throw config::ConfigError(e.where, "regex \"" + e.pattern + "\": " + error);
  // Without JIT (no executable memory, say) PCRE2 interprets: slower, same answers.
  pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE);
  auto re = std::make_unique<Regex>();
  re->code = std::move(code);
  re->backend = e.backend;
  re->pattern = e.pattern;
  re->label = "~" + e.pattern;
  return re;
}

RouteTable RouteTable::build(const config::TableConfig& table) {
  using Kind = config::RouteEntry::Kind;
  RouteTable t;
  for (const auto& e : table.entries) {
    switch (e.kind) {
      case Kind::Exact:
        t.exact_.emplace(normalize(e.pattern), e.backend);
        break;
      case Kind::Wildcard:
        t.wildcard_.emplace(normalize(e.pattern), Wildcard{e.backend, "*." + e.pattern});
        break;
      case Kind::Regex:
        t.regexes_.push_back(compile(e));
        break;
    }
  }
  t.default_ = table.default_backend;
  t.no_sni_ = table.no_sni_backend;
  for (std::uint32_t i = 0; i < table.rules.size(); ++i) {
    const config::RouteRule& r = table.rules[i];
    auto rule = std::make_unique<Rule>();
    rule->config = r;
    rule->label = "rule#" + std::to_string(i + 1);
    if (!r.name || r.name->kind == Kind::Regex) {
      if (r.name) rule->name_regex = compile(*r.name);
      t.other_rules_.push_back(i);
    } else {
      auto& index = r.name->kind == Kind::Exact ? t.exact_rules_ : t.wildcard_rules_;
      index[normalize(r.name->pattern)].push_back(i);
    }
    t.rules_.push_back(std::move(rule));
  }
  return t;
}

bool RouteTable::regex_matches(Regex& re, const std::string& name) const {
  int rc = pcre2_match(re.code.get(), reinterpret_cast<PCRE2_SPTR>(name.data()), name.size(), 0,
                       0, thread_match_data(), config::route_match_context());
  if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT) note_limit_hit(re, name);
  return rc >= 0;
}

// The name condition is settled by the index, apart from a regex.
bool RouteTable::rule_matches(const Rule& rule, const std::string& name,
                              const RouteQuery& query) const {
  const config::RouteRule& r = rule.config;
  if (!r.alpn.empty() && !offers_any(query.alpn, r.alpn)) return false;
  if (!r.client.empty() && !in_any(query.client, r.client)) return false;
  if (rule.name_regex) return !name.empty() && regex_matches(*rule.name_regex, name);
  return true;
}

std::optional<std::uint32_t> RouteTable::first_rule(const std::string& name,
                                                    const RouteQuery& query) const {
  constexpr auto kNone = std::numeric_limits<std::uint32_t>::max();
  std::uint32_t best = kNone;
  // Each list ascends: its first match is its best, and nothing past `best` can win.
  auto scan = [&](const std::vector<std::uint32_t>& list) {
    for (std::uint32_t i : list) {
      if (i >= best) return;
      if (rule_matches(*rules_[i], name, query)) {
        best = i;
        return;
      }
    }
  };
  if (!name.empty()) {
    if (auto it = exact_rules_.find(name); it != exact_rules_.end()) scan(it->second);
    if (!wildcard_rules_.empty())
      for (auto dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1))
        if (auto it = wildcard_rules_.find(std::string_view(name).substr(dot + 1));
            it != wildcard_rules_.end())
          scan(it->second);
  }
  scan(other_rules_);
  if (best == kNone) return std::nullopt;
  return best;
}

RouteMatch RouteTable::route(const RouteQuery& query) const {
  std::string name = normalize(query.name);
  if (!rules_.empty())
    if (auto i = first_rule(name, query))
      return {&rules_[*i]->config.backend, &rules_[*i]->label, &rules_[*i]->config};
  auto fallback = [this]() -> RouteMatch {
    if (default_) return {&*default_, &default_label_, nullptr};
    return {};
  };
  if (name.empty()) {
    if (no_sni_) return {&*no_sni_, &no_sni_label_, nullptr};
    return fallback();
  }
  if (auto it = exact_.find(name); it != exact_.end()) return {&it->second, &exact_label_, nullptr};
  // "*.a.b" is stored as "a.b"; the suffix after the first dot is the longest candidate, so
  // walking the dots left to right finds the longest matching wildcard first. The name itself
  // is never looked up here: a wildcard does not cover its apex.
  for (auto dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1)) {
    auto it = wildcard_.find(name.substr(dot + 1));
    if (it != wildcard_.end()) return {&it->second.backend, &it->second.label, nullptr};
  }
  for (const auto& re : regexes_)
    if (regex_matches(*re, name)) return {&re->backend, &re->label, nullptr};
  return fallback();
}

}  // namespace snigate::routing
