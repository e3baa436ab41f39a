// snigate-watch: fail2ban-style log watcher for backend hosts. `snigate-watch -c watch.toml`
// follows the configured jails and pushes their bans to the edge; `snigate-watch test FILTER
// LOG` tries a filter on a log file.
#include <iostream>

#include <CLI/CLI.hpp>

#include "test_command.h"
#include "watch/filter.h"
#include "watch/filter_file.h"

int main(int argc, char** argv) {
  CLI::App app{"snigate-watch: ban offenders found in backend logs at the snigate edge"};
  app.require_subcommand(0, 1);

  snigate::watch_tool::TestOptions test;
  auto* test_cmd = app.add_subcommand("test", "run one filter over a log file, like fail2ban-regex");
  test_cmd->add_option("filter", test.filter, "filter file, name under --filter-dir, or a failregex")
      ->required();
  test_cmd->add_option("logfile", test.logfile, "log file, or - for stdin")->required();
  test_cmd->add_option("--filter-dir", test.filter_dir, "where filter names are looked up");
  test_cmd->add_option("--datepattern", test.datepattern, "override the filter's datepattern");
  test_cmd->add_flag("--print-all-matched", test.print_matched);
  test_cmd->add_flag("--print-all-missed", test.print_missed);
  test_cmd->add_flag("--print-all-ignored", test.print_ignored);
  test_cmd->add_flag("--hosts", test.hosts, "print HOST<TAB>LINE per matched line, no summary");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*test_cmd) return snigate::watch_tool::run_test(test);
  } catch (const std::exception& e) {
    std::cerr << "snigate-watch: " << e.what() << "\n";
    return 2;
  }
  std::cerr << app.help();
  return 2;
}
