#include "crowdsec/go_duration.h"

#include <array>
#include <cstdint>

namespace snigate::crowdsec {
namespace {

constexpr std::int64_t kLimitNs = 100LL * 365 * 86400 * 1'000'000'000;

struct Unit {
  std::string_view name;
  std::int64_t ns;
};
// Longest names first where one is a prefix of another ("ms" before "m").
constexpr std::array<Unit, 8> kUnits{{{"ns", 1},
                                      {"us", 1'000},
                                      {"\xC2\xB5s", 1'000},  // U+00B5 micro sign
                                      {"\xCE\xBCs", 1'000},  // U+03BC Greek mu
                                      {"ms", 1'000'000},
                                      {"s", 1'000'000'000},
                                      {"m", 60'000'000'000},
                                      {"h", 3'600'000'000'000}}};

std::optional<std::chrono::milliseconds> bad(std::string_view text, std::string* error,
                                             const char* why) {
  if (error) *error = "\"" + std::string(text) + "\" is not a duration: " + why;
  return std::nullopt;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_go_duration(std::string_view text,
                                                           std::string* error) {
  std::string_view rest = text;
  bool negative = false;
  if (!rest.empty() && (rest.front() == '-' || rest.front() == '+')) {
    negative = rest.front() == '-';
    rest.remove_prefix(1);
  }
  if (rest == "0") return std::chrono::milliseconds(0);
  if (rest.empty()) return bad(text, error, "it is empty");
  std::int64_t total_ns = 0;
  while (!rest.empty()) {
    // Whole part and fraction, kept apart so "0.000000001h" loses nothing before the unit.
    std::int64_t whole = 0, fraction = 0, scale = 1;
    std::size_t digits = 0;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
      whole = whole * 10 + (rest.front() - '0');
      if (whole > kLimitNs) return bad(text, error, "it is too long");
      rest.remove_prefix(1);
      ++digits;
    }
    if (!rest.empty() && rest.front() == '.') {
      rest.remove_prefix(1);
      while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
        if (scale < 1'000'000'000'000'000) {  // digits past 18 cannot matter at 1 ns
          fraction = fraction * 10 + (rest.front() - '0');
          scale *= 10;
        }
        rest.remove_prefix(1);
        ++digits;
      }
    }
    if (digits == 0) return bad(text, error, "expected a number");
    const Unit* unit = nullptr;
    for (const auto& u : kUnits)
      if (rest.substr(0, u.name.size()) == u.name) {
        unit = &u;
        break;
      }
    if (!unit) return bad(text, error, "expected a unit (h, m, s, ms, us, ns) after a number");
    rest.remove_prefix(unit->name.size());
    if (whole > kLimitNs / unit->ns) return bad(text, error, "it is too long");
    // fraction/scale of a unit, in ns: at most unit->ns, computed without overflow.
    const auto part = static_cast<std::int64_t>(static_cast<long double>(fraction) *
                                                static_cast<long double>(unit->ns) /
                                                static_cast<long double>(scale));
    total_ns += whole * unit->ns + part;
    if (total_ns > kLimitNs) return bad(text, error, "it is too long");
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(total_ns));
  return negative ? -ms : ms;
}

}  // namespace snigate::crowdsec
