#pragma once
// A compiled PCRE2 pattern (JIT when the platform has it) and the spans of one match: every
// filter regex, date template and prefregex goes through this one wrapper.
#include <cstddef>
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

class Pcre {
 public:
  // Throws RegexError "PATTERN: what PCRE2 said at offset N". Duplicate group names are
  // allowed (date templates reuse them). `multiline`: ^ and $ at every line (maxlines > 1).
  explicit Pcre(const std::string& pattern, bool caseless = false, bool multiline = false);
  ~Pcre();
  Pcre(Pcre&&) noexcept;
  Pcre& operator=(Pcre&&) noexcept;

  // Searches `subject` from `start`.
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

 private:
  friend class Pcre;
  struct Data;
  std::unique_ptr<Data> data_;
  std::string_view subject_;
};

}  // namespace snigate::watch
