#include "test_command.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <vector>

#include "watch/filter.h"
#include "watch/filter_file.h"

namespace snigate::watch_tool {

namespace {

// A FILTER argument that names no file is a failregex, as with fail2ban-regex.
watch::FilterDefinition definition_for(const TestOptions& o) {
  namespace fs = std::filesystem;
  std::string name = o.filter.substr(0, o.filter.find('['));
  bool is_file = fs::exists(name) || (name.find('/') == std::string::npos &&
                                      (fs::exists(fs::path(o.filter_dir) / (name + ".conf")) ||
                                       fs::exists(fs::path(o.filter_dir) / name)));
  watch::FilterDefinition def;
  if (is_file) {
    def = watch::load_filter(o.filter, {}, o.filter_dir);
  } else {
    def.source = "<command line>";
    def.failregex = {o.filter};
  }
  if (!o.datepattern.empty()) def.datepattern = o.datepattern;
  return def;
}

void print_list(const char* title, const std::vector<std::string>& lines) {
  if (lines.empty()) return;
  std::cout << "\n" << title << " line(s):\n";
  for (const auto& l : lines) std::cout << "|  " << l << "\n";
  std::cout << "`-\n";
}

}  // namespace

int run_test(const TestOptions& o) {
  watch::Filter filter(definition_for(o));
  std::ifstream file;
  std::istream* in = &std::cin;
  if (o.logfile != "-") {
    file.open(o.logfile);
    if (!file) {
      std::cerr << "snigate-watch: cannot read " << o.logfile << "\n";
      return 2;
    }
    in = &file;
  }
  std::vector<std::string> matched, missed, ignored;
  std::size_t lines = 0, n_matched = 0, n_missed = 0, n_ignored = 0;
  auto now = std::chrono::system_clock::now();
  auto started = std::chrono::steady_clock::now();
  std::string line;
  while (std::getline(*in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;  // fail2ban-regex skips these too
    ++lines;
    auto r = filter.process(line, now);
    switch (r.kind) {
      case watch::LineResult::Kind::Matched:
        ++n_matched;
        if (o.hosts) std::cout << r.host << "\t" << line << "\n";
        if (o.print_matched) matched.push_back(line);
        break;
      case watch::LineResult::Kind::Ignored:
        ++n_ignored;
        if (o.print_ignored) ignored.push_back(line);
        break;
      case watch::LineResult::Kind::Missed:
        ++n_missed;
        if (o.print_missed) missed.push_back(line);
        break;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (o.hosts) return 0;
  const auto& def = filter.definition();
  std::cout << "Running tests\n=============\n\nUse filter: " << def.source << "\n";
  if (!def.prefregex.empty()) std::cout << "Use prefregex: " << def.prefregex << "\n";
  std::cout << "Use failregex: " << def.failregex.size() << " regex(es)\n";
  if (!def.datepattern.empty()) std::cout << "Use datepattern: " << def.datepattern << "\n";
  std::cout << "\nResults\n=======\n\nLines: " << lines << " lines, " << n_ignored << " ignored, "
            << n_matched << " matched, " << n_missed << " missed\n";
  char rate[128];
  std::snprintf(rate, sizeof rate, "[processed in %.3f sec, %.0f lines/s]\n", secs,
                secs > 0 ? static_cast<double>(lines) / secs : 0.0);
  std::cout << rate;
  print_list("Matched", matched);
  print_list("Ignored", ignored);
  print_list("Missed", missed);
  return 0;
}

}  // namespace snigate::watch_tool
