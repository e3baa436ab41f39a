#include "config/diag.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <vector>

namespace snigate::config {
namespace {

std::string position(const toml::source_region& where) {
  std::string file = where.path ? std::string(*where.path) : std::string("<config>");
  if (where.begin.line == 0) return file;
  return file + ":" + std::to_string(where.begin.line) + ":" + std::to_string(where.begin.column);
}

const toml::node& at_key(const toml::table& t, std::string_view key) { return *t.get(key); }

// Optimal string alignment distance: a swap of two neighbours ("tsl") costs one edit, like
// an insertion, deletion or substitution.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::string escaped(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

ConfigError::ConfigError(const toml::source_region& where, const std::string& message)
    : std::runtime_error(position(where) + ": " + message) {}

void fail(const toml::node& at, const std::string& message) {
  throw ConfigError(at.source(), message);
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  // A third of the word's length, at least one edit: catches typos, not unrelated names.
  std::size_t limit = std::max<std::size_t>(1, word.size() / 3);
  const std::string* best = nullptr;
  std::size_t best_distance = limit + 1;
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best = &c;
      best_distance = d;
    }
  }
  return best ? " (did you mean '" + *best + "'?)" : "";
}

void check_keys(const toml::table& table, std::initializer_list<std::string_view> allowed,
                std::string_view where) {
  for (const auto& [key, value] : table) {
    bool known = false;
    for (auto a : allowed) known = known || key.str() == a;
    if (known) continue;
    std::vector<std::string> candidates(allowed.begin(), allowed.end());
    std::string message = "unknown key '" + escaped(key.str()) + "' in [" +
                          std::string(where) + "]" + did_you_mean(key.str(), candidates);
    if (key.source().begin.line != 0) throw ConfigError(key.source(), message);
    fail(value, message);
  }
}

std::chrono::milliseconds parse_duration(std::string_view text, std::chrono::milliseconds max) {
  if (text.empty()) throw std::invalid_argument("empty duration");
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  // A number too large for 64 bits is still a number: the bound below refuses it with the limit.
  const bool huge = ec == std::errc::result_out_of_range;
  if (!huge && (ec != std::errc() || end == text.data() || value < 0))
    throw std::invalid_argument("'" + std::string(text) + "' is not a duration such as 500ms, 5s, 10m, 1h, 2d");
  if (huge) value = std::numeric_limits<std::int64_t>::max();
  std::string_view unit(end, text.data() + text.size() - end);
  using namespace std::chrono;
  std::int64_t unit_ms = 0;
  if (unit.empty() || unit == "s") unit_ms = 1000;
  else if (unit == "ms") unit_ms = 1;
  else if (unit == "m") unit_ms = 60'000;
  else if (unit == "h") unit_ms = 3'600'000;
  else if (unit == "d") unit_ms = 86'400'000;
  else if (unit == "w") unit_ms = 7 * 86'400'000LL;
  else
    throw std::invalid_argument("unknown unit '" + std::string(unit) + "' in duration '" +
                                std::string(text) + "' (use ms, s, m, h, d or w)");
  // Compared before multiplying, so no value wraps into a negative or tiny duration.
  if (value > max.count() / unit_ms)
    throw std::invalid_argument("duration '" + std::string(text) + "' is longer than " +
                                format_duration(max) + ", the most this setting takes");
  return milliseconds(value * unit_ms);
}

std::chrono::milliseconds parse_duration(const toml::node& node, std::chrono::milliseconds max) {
  if (auto i = node.value_exact<std::int64_t>()) {
    if (*i < 0) fail(node, "a duration cannot be negative");
    if (*i > max.count() / 1000)
      fail(node, "duration " + std::to_string(*i) + "s is longer than " + format_duration(max) +
                     ", the most this setting takes");
    return std::chrono::seconds(*i);
  }
  auto s = node.value_exact<std::string>();
  if (!s) fail(node, "expected a duration string such as \"5s\"");
  try {
    return parse_duration(*s, max);
  } catch (const std::invalid_argument& e) {
    fail(node, e.what());
  }
}

std::string format_duration(std::chrono::milliseconds d) {
  const std::int64_t ms = d.count();
  struct Unit { std::int64_t ms; const char* suffix; };
  for (Unit u : {Unit{86'400'000, "d"}, Unit{3'600'000, "h"}, Unit{60'000, "m"}, Unit{1000, "s"}})
    if (ms >= u.ms && ms % u.ms == 0) return std::to_string(ms / u.ms) + u.suffix;
  return std::to_string(ms) + "ms";
}

std::string get_string(const toml::table& t, std::string_view key, std::string_view fallback) {
  if (!t.contains(key)) return std::string(fallback);
  auto s = at_key(t, key).value_exact<std::string>();
  if (!s) fail(at_key(t, key), "'" + std::string(key) + "' must be a string");
  return *s;
}

std::string require_string(const toml::table& t, std::string_view key, std::string_view where) {
  if (!t.contains(key))
    throw ConfigError(t.source(), "[" + std::string(where) + "] needs '" + std::string(key) + "'");
  return get_string(t, key, "");
}

std::int64_t get_int(const toml::table& t, std::string_view key, std::int64_t fallback,
                     std::int64_t min, std::int64_t max) {
  if (!t.contains(key)) return fallback;
  auto i = at_key(t, key).value_exact<std::int64_t>();
  if (!i) fail(at_key(t, key), "'" + std::string(key) + "' must be an integer");
  if (*i < min || *i > max)
    fail(at_key(t, key), "'" + std::string(key) + "' must be between " + std::to_string(min) +
                             " and " + std::to_string(max));
  return *i;
}

bool get_bool(const toml::table& t, std::string_view key, bool fallback) {
  if (!t.contains(key)) return fallback;
  auto b = at_key(t, key).value_exact<bool>();
  if (!b) fail(at_key(t, key), "'" + std::string(key) + "' must be true or false");
  return *b;
}

std::chrono::milliseconds get_duration(const toml::table& t, std::string_view key,
                                       std::chrono::milliseconds fallback,
                                       std::chrono::milliseconds max) {
  if (!t.contains(key)) return fallback;
  return parse_duration(at_key(t, key), max);
}

std::vector<std::string> get_string_list(const toml::table& t, std::string_view key) {
  std::vector<std::string> out;
  if (!t.contains(key)) return out;
  const auto& node = at_key(t, key);
  if (auto s = node.value_exact<std::string>()) {
    out.push_back(*s);
  } else if (auto arr = node.as_array()) {
    for (const auto& item : *arr) {
      auto v = item.value_exact<std::string>();
      if (!v) fail(item, "'" + std::string(key) + "' must hold strings");
      out.push_back(*v);
    }
  } else {
    fail(node, "'" + std::string(key) + "' must be a string or a list of strings");
  }
  return out;
}

std::vector<net::Prefix> get_prefix_list(const toml::table& t, std::string_view key,
                                         std::string_view where) {
  std::vector<net::Prefix> out;
  for (const auto& text : get_string_list(t, key)) {
    std::string why;
    auto prefix = net::Prefix::parse(text, &why);
    if (!prefix)
      fail(at_key(t, key), std::string(where) + std::string(key) + " '" + escaped(text) + "': " + why);
    out.push_back(*prefix);
  }
  return out;
}

}  // namespace snigate::config
