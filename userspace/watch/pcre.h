#pragma once
// A compiled PCRE2 pattern (JIT when the platform has it) and the spans of one match: every
// filter regex, date template and prefregex goes through this one wrapper. A match costs at
// most kMatchLimit backtracking steps: a regex that backtracks catastrophically (`(a+)+$`)
// on a hostile line gives up instead of stalling every jail; Match::limit_hit() says so.
//
// Patterns are read in fail2ban's dialect, Python's `re` on str: UTF-8 with Unicode classes
// (PCRE2_UTF | PCRE2_UCP: \d is any Nd digit, \w any letter or digit), and \s / \S as
// str.isspace() has them, which adds U+001C..U+001F to PCRE2's Unicode spaces. A subject
// that is not valid UTF-8 is matched as if its bad bytes were U+FFFD, as fail2ban decodes
// log lines with errors='replace'.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace snigate::watch {

class RegexError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Match;

// PCRE2's match and depth limits, set on purpose (its defaults, 10 000 000 each, let one
// line cost tens of milliseconds). Every stock fail2ban filter needs a few hundred steps per
// line; fail2ban_compat_test checks they still agree with fail2ban-regex under these.
inline constexpr std::uint32_t kMatchLimit = 100000;
inline constexpr std::uint32_t kDepthLimit = 10000;

class Pcre {
 public:
  // Throws RegexError "PATTERN: what PCRE2 said at offset N". Duplicate group names are
  // allowed (date templates reuse them). `multiline`: ^ and $ at every line (maxlines > 1).
  explicit Pcre(const std::string& pattern, bool caseless = false, bool multiline = false);
  ~Pcre();
  Pcre(Pcre&&) noexcept;
  Pcre& operator=(Pcre&&) noexcept;

  // Searches `subject` from `start` (a valid UTF-8 subject: see to_valid_utf8).
  bool search(std::string_view subject, Match& match, std::size_t start = 0) const;
  bool search(std::string_view subject) const;
  // Group number for a name (the first, when duplicated); -1 when absent.
  int group(std::string_view name) const;
  // Every group number carrying `name` (duplicates), in order.
  std::vector<int> groups(std::string_view name) const;
  std::vector<std::string> group_names() const;
  const std::string& pattern() const { return pattern_; }

 private:
  friend class Match;
  std::string pattern_;
  struct Code;
  std::unique_ptr<Code> code_;
};

// `text` with every byte that is not part of valid UTF-8 replaced by U+FFFD; `text` itself
// (no copy) when it is valid already, which log lines nearly always are.
std::string_view to_valid_utf8(std::string_view text, std::string& storage);

// Python's \s and \S spelled for PCRE2 (see above); the rest of the pattern unchanged.
std::string python_spaces(const std::string& pattern);

class Match {
 public:
  Match();
  ~Match();
  Match(const Match&) = delete;
  Match& operator=(const Match&) = delete;
  // Span of group `n`; nullopt when the group did not take part.
  std::optional<std::pair<std::size_t, std::size_t>> span(int n) const;
  std::optional<std::string_view> str(int n) const;
  // First participating group among `numbers`.
  std::optional<std::string_view> first(const std::vector<int>& numbers) const;
  // The last search gave up at kMatchLimit/kDepthLimit (or the JIT stack): not a miss.
  bool limit_hit() const;

 private:
  friend class Pcre;
  struct Data;
  std::unique_ptr<Data> data_;
  std::string_view subject_;
};

}  // namespace snigate::watch
