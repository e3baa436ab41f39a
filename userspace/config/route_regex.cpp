#include "config/route_regex.h"

#include <vector>

namespace snigate::config {

RouteRegex compile_route_regex(const std::string& pattern, std::string* error) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  RouteRegex re(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                              PCRE2_CASELESS, &code, &offset, nullptr));
  if (!re && error) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(code, message, sizeof message);
    *error = std::string(reinterpret_cast<const char*>(message)) + " at offset " +
             std::to_string(offset);
  }
  return re;
}

pcre2_match_context* route_match_context() {
  static pcre2_match_context* context = [] {
    pcre2_match_context* c = pcre2_match_context_create(nullptr);
    pcre2_set_match_limit(c, kRouteMatchLimit);
    pcre2_set_depth_limit(c, kRouteDepthLimit);
    return c;
  }();
  return context;
}

namespace {

// At `i` (just after an atom): the length of an unbounded quantifier there ("*", "+",
// "{2,}", with a lazy or possessive suffix), or 0 when none (or a bounded one) follows.
std::size_t unbounded_quantifier_at(std::string_view p, std::size_t i) {
  if (i >= p.size()) return 0;
  if (p[i] == '*' || p[i] == '+') return 1;
  if (p[i] != '{') return 0;
  auto close = p.find('}', i);
  if (close == std::string_view::npos) return 0;
  std::string_view inside = p.substr(i + 1, close - i - 1);
  auto comma = inside.find(',');
  bool digits = !inside.empty() && inside.find_first_not_of("0123456789,") == std::string_view::npos;
  return digits && comma != std::string_view::npos && comma + 1 == inside.size() ? close - i + 1 : 0;
}

}  // namespace

bool nests_unbounded_quantifiers(std::string_view p) {
  // One flag per open group: does it hold an unbounded quantifier, at any depth?
  std::vector<bool> open{false};
  for (std::size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\') {
      ++i;  // the escaped character is an atom
    } else if (c == '[') {
      // A class is one atom: skip to its closing bracket (a leading ']' or '^]' is literal).
      std::size_t j = i + 1;
      if (j < p.size() && p[j] == '^') ++j;
      if (j < p.size() && p[j] == ']') ++j;
      while (j < p.size() && p[j] != ']') j += p[j] == '\\' ? 2 : 1;
      i = j;
    } else if (c == '(') {
      open.push_back(false);
      continue;
    } else if (c == ')' && open.size() > 1) {
      bool inner = open.back();
      open.pop_back();
      std::size_t q = unbounded_quantifier_at(p, i + 1);
      if (q && inner) return true;
      if (inner || q) open.back() = true;
      i += q;
      continue;
    } else if (c == '*' || c == '+' || c == '{') {
      std::size_t q = unbounded_quantifier_at(p, i);
      if (q) {
        open.back() = true;
        i += q - 1;
      }
      continue;
    }
    // After an atom: a quantifier on it marks the enclosing group.
    if (std::size_t q = unbounded_quantifier_at(p, i + 1)) {
      open.back() = true;
      i += q;
    }
  }
  return false;
}

}  // namespace snigate::config
