#pragma once
// Route-table regexes ("~pattern" keys) are compiled in one place, with one set of options,
// so the config check refuses exactly what the route table could not build.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

namespace snigate::config {

struct Pcre2CodeFree {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
using RouteRegex = std::unique_ptr<pcre2_code, Pcre2CodeFree>;

// Case-insensitive, as host names are. On error returns null and sets *error to PCRE2's
// message with the offset in the pattern.
RouteRegex compile_route_regex(const std::string& pattern, std::string* error);

// PCRE2's defaults (10 million match steps) let one crafted name burn ~17 ms of a worker on
// a pattern such as (a+)+$. These bound one match to ~100 us; a normal host-name pattern
// needs a few thousand steps at most. A match that hits them counts as no match.
inline constexpr std::uint32_t kRouteMatchLimit = 50'000;
inline constexpr std::uint32_t kRouteDepthLimit = 2'000;
// A match context with those limits, shared read-only by every thread.
pcre2_match_context* route_match_context();

// True when a group that itself holds an unbounded quantifier (*, +, {n,}) is repeated by
// another one, as in (a+)+ or (x*y)*: the shape that backtracks exponentially. A heuristic
// for --check's warning, not a proof either way.
bool nests_unbounded_quantifiers(std::string_view pattern);

}  // namespace snigate::config
