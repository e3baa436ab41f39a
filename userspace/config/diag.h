#pragma once
// Configuration errors that point at the file and line, and the small readers every section
// parser shares. Each subsystem parses its own section with these; none re-implements them.
#include <chrono>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "net/prefix.h"

namespace snigate::config {

class ConfigError : public std::runtime_error {
 public:
  // what() reads "FILE:LINE:COLUMN: MESSAGE", or "FILE: MESSAGE" when there is no position.
  ConfigError(const toml::source_region& where, const std::string& message);
  explicit ConfigError(const std::string& message) : std::runtime_error(message) {}
};

[[noreturn]] void fail(const toml::node& at, const std::string& message);

// Rejects any key of `table` not in `allowed`: "unknown key 'x' in [where]", with a
// "did you mean" when one allowed key is a near miss.
void check_keys(const toml::table& table, std::initializer_list<std::string_view> allowed,
                std::string_view where);

// " (did you mean 'best'?)" when one candidate is within a small edit distance of `word`,
// else "". Appended to errors about a misspelt key, table or backend name.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

// The longest duration any setting takes unless it says less: ten years. Every duration is
// bounded, so none can overflow into a negative time (now + it stays far from the clocks'
// limits, which are centuries away).
inline constexpr std::chrono::milliseconds kMaxDuration{3650LL * 86'400'000};

// Durations as people write them: "500ms", "5s", "10m", "1h", "2d", or a plain integer of
// seconds. Zero is allowed; negatives, unknown units and more than `max` are errors.
std::chrono::milliseconds parse_duration(const toml::node& node,
                                         std::chrono::milliseconds max = kMaxDuration);
// Throws std::invalid_argument.
std::chrono::milliseconds parse_duration(std::string_view text,
                                         std::chrono::milliseconds max = kMaxDuration);
// The shortest exact spelling parse_duration reads back: "3650d", "90s", "1500ms".
std::string format_duration(std::chrono::milliseconds d);

// `text` safe to quote in an error: printable ASCII as is, every other byte (UTF-8, control
// characters, NUL) as \xNN, so a message never carries half a character or ends at a NUL.
std::string escaped(std::string_view text);

// Typed readers with errors that name the key. `required` readers fail when the key is absent.
std::string get_string(const toml::table& t, std::string_view key, std::string_view fallback);
std::string require_string(const toml::table& t, std::string_view key, std::string_view where);
std::int64_t get_int(const toml::table& t, std::string_view key, std::int64_t fallback,
                     std::int64_t min, std::int64_t max);
bool get_bool(const toml::table& t, std::string_view key, bool fallback);
std::chrono::milliseconds get_duration(const toml::table& t, std::string_view key,
                                       std::chrono::milliseconds fallback,
                                       std::chrono::milliseconds max = kMaxDuration);
// A string or an array of strings.
std::vector<std::string> get_string_list(const toml::table& t, std::string_view key);
// get_string_list read as addresses or CIDRs; a bad one fails as "WHERE KEY 'TEXT': why".
std::vector<net::Prefix> get_prefix_list(const toml::table& t, std::string_view key,
                                         std::string_view where = {});

}  // namespace snigate::config
