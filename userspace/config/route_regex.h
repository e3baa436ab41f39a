#pragma once
// Route-table regexes ("~pattern" keys) are compiled in one place, with one set of options,
// so the config check refuses exactly what the route table could not build.
#include <memory>
#include <string>

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

}  // namespace snigate::config
