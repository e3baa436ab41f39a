#pragma once
// Reads fail2ban filter files (filter.d/NAME.conf) the way fail2ban does, so stock filters load
// as they are: [INCLUDES] before/after (plus NAME.local), [DEFAULT], [Definition], [Init],
// Python-configparser continuation lines, %(name)s and %(section/name)s interpolation, then
// fail2ban's recursive <tag> substitution (<mode>, <lt_<logtype>/__prefix_line>, ...). The
// result still holds fail2ban's regex tags (<HOST>, <F-USER>...): filter.h expands those.
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace snigate::watch {

inline constexpr const char* kFail2banFilterDir = "/etc/fail2ban/filter.d";

class FilterFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct FilterDefinition {
  std::string source;                    // the file read, for messages
  std::string prefregex;                 // empty: none
  std::vector<std::string> failregex;    // one entry per line of the option
  std::vector<std::string> ignoreregex;
  std::string datepattern;               // empty: fail2ban's default templates
  int maxlines = 1;                      // > 1: multi-line buffer
};

// `spec` is a path ("/etc/fail2ban/filter.d/sshd.conf", "./my.conf") or a filter name looked
// up in `filter_dir` ("sshd"), optionally with fail2ban's arguments: "sshd[mode=aggressive]".
// `overrides` win over the file's [Definition]/[Init] values, like jail-level filter options.
FilterDefinition load_filter(const std::string& spec,
                             const std::map<std::string, std::string>& overrides = {},
                             const std::string& filter_dir = kFail2banFilterDir);

}  // namespace snigate::watch
