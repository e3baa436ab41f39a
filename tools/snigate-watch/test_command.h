#pragma once
// `snigate-watch test FILTER LOGFILE`: runs one filter over a log file and prints what
// matched, what was ignored and what was missed, like fail2ban-regex does.
#include <string>

namespace snigate::watch_tool {

struct TestOptions {
  std::string filter;   // filter file, name in filter_dir ("sshd[mode=aggressive]"), or a regex
  std::string logfile;  // "-" for stdin
  std::string filter_dir = "/etc/fail2ban/filter.d";
  std::string datepattern;  // overrides the filter's
  bool print_matched = false;
  bool print_missed = false;
  bool print_ignored = false;
  bool hosts = false;  // one "HOST<TAB>LINE" row per matched line instead of the summary
};

int run_test(const TestOptions& options);

}  // namespace snigate::watch_tool
