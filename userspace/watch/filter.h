#pragma once
// A compiled fail2ban filter: PCRE2 (JIT) regexes with fail2ban's tags expanded exactly as
// fail2ban expands them (<HOST>, <ADDR>, <IP4>, <IP6>, <DNS>, <CIDR>, <SUBNET>, <F-ID/>,
// <F-NAME>...</F-NAME>, <SKIPLINES>), prefregex/<F-CONTENT>, ignoreregex, multi-line buffers
// (maxlines; simplified: a match consumes the whole buffer, where fail2ban keeps the lines it
// did not match) and the multi-line failure id (<F-MLFID>, <F-NOFAIL>, <F-MLFFORGET>,
// <F-MLFGAINED>) that sshd.conf relies on. Lines are matched the way fail2ban matches them:
// the date found in the line is cut out and failregex sees "text before" + "text after".
#include <chrono>
#include <stdexcept>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "watch/filter_file.h"

namespace snigate::watch {

class FilterError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Expands fail2ban's tags in one regex into the PCRE2 source fail2ban would compile.
std::string expand_fail2ban_tags(const std::string& regex, bool use_dns = true);

struct LineResult {
  // Ignored: ignoreregex, or a match fail2ban marks <F-NOFAIL> (fail2ban-regex counts both
  // as "ignored").
  enum class Kind { Missed, Matched, Ignored };
  Kind kind = Kind::Missed;
  std::string host;  // the failure's ip4/ip6/dns (or F-ID); empty while an F-MLFID waits
  bool host_is_ip = false;
  std::string user;  // <F-USER>, when the regex has one
  std::optional<std::chrono::system_clock::time_point> time;  // from the line, if any
  int regex_index = -1;  // which failregex matched
  // A regex gave up at PCRE2's match limit (pcre.h) on this line: whatever it would have
  // found is lost, so the jail counts and logs these rather than taking them for misses.
  bool limit_hit = false;
};

// The failregex/ignoreregex (as written) that give up at PCRE2's match limit on some probe
// line: runs of one character class with a stray byte at the end, on which nested repeats
// ((a+)+, (\s*\S*)*) backtrack exponentially. For `--check`; a hostile log line does the same.
std::vector<std::string> regexes_that_give_up(const FilterDefinition& definition);

class Filter {
 public:
  // Throws FilterError naming the regex that does not compile, or a failregex with no host
  // group (<HOST>, <ADDR>, <IP4>, <IP6>, <F-ID>, <F-MLFID>, here or in prefregex): it could
  // never ban, and fail2ban refuses it too ("No failure-id group").
  explicit Filter(const FilterDefinition& definition);
  ~Filter();
  Filter(Filter&&) noexcept;
  Filter& operator=(Filter&&) noexcept;

  // Feeds one line (without its newline). Stateful: multi-line buffers and F-MLFID caches.
  LineResult process(std::string_view line,
                     std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

  const FilterDefinition& definition() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace snigate::watch
