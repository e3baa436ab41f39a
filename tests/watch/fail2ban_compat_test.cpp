// Stock Debian fail2ban filters, loaded as they are, run over sample logs; fail2ban-regex
// runs over the same files in the same test, and both must agree on which lines match,
// which are ignored, which are missed, and which host each match names.
#include <gtest/gtest.h>

#include <unistd.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "watch/filter.h"
#include "watch/filter_file.h"

namespace snigate::watch {
namespace {

namespace fs = std::filesystem;

// The sample logs fail2ban's own test-suite uses, shipped in Debian's fail2ban package.
const fs::path kSamples = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";

std::string run(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf{};
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  ::pclose(p);
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

std::string rstrip(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  return s;
}

// fail2ban-regex's "|- Matched line(s):" / "|  LINE" / "`-" blocks -> line -> verdicts.
std::map<std::string, std::vector<std::string>> fail2ban_verdicts(const fs::path& log,
                                                                  const std::string& filter) {
  std::string out = run("fail2ban-regex --no-check-all --print-all-matched --print-all-missed "
                        "--print-all-ignored '" + log.string() + "' " + filter + " 2>/dev/null");
  std::map<std::string, std::vector<std::string>> verdicts;
  std::string current;
  for (const auto& l : lines_of(out)) {
    for (const char* kind : {"Matched", "Ignored", "Missed"})
      if (l.find(std::string(kind) + " line(s):") != std::string::npos) current = kind;
    if (l.rfind("|  ", 0) == 0 && !current.empty()) verdicts[rstrip(l.substr(3))].push_back(current);
    if (l.rfind("`-", 0) == 0) current.clear();
  }
  return verdicts;
}

bool is_ip(const std::string& host) {
  return host.find_first_not_of("0123456789.") == std::string::npos ||
         host.find(':') != std::string::npos;
}

fs::path sample_without_comments(const std::string& name) {
  fs::path out = fs::temp_directory_path() / ("snigate-watch-" + name + ".log");
  std::ifstream in(kSamples / name);
  std::ofstream o(out);
  // fail2ban-regex skips blank lines, also the "\r" ones of CRLF samples (traefik-auth).
  for (std::string line; std::getline(in, line);)
    if (!rstrip(line).empty() && line[0] != '#') o << line << "\n";
  return out;
}

class StockFilter : public ::testing::TestWithParam<std::string> {};

TEST_P(StockFilter, AgreesWithFail2banRegex) {
  const std::string name = GetParam();
  ASSERT_TRUE(fs::exists("/usr/bin/fail2ban-regex")) << "install fail2ban (tools/install-deps.sh)";
  ASSERT_TRUE(fs::exists(kSamples / name)) << "fail2ban's sample log for " << name;
  fs::path log = sample_without_comments(name);

  auto theirs = fail2ban_verdicts(log, name);
  ASSERT_FALSE(theirs.empty()) << "fail2ban-regex printed nothing for " << name;

  Filter filter(load_filter(name));
  std::map<std::string, std::vector<std::string>> ours;
  std::map<std::string, std::string> dns_hosts;
  std::vector<std::string> our_hosts;
  std::size_t matched = 0;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    auto r = filter.process(line);
    const char* kind = r.kind == LineResult::Kind::Matched   ? "Matched"
                       : r.kind == LineResult::Kind::Ignored ? "Ignored"
                                                              : "Missed";
    ours[rstrip(line)].push_back(kind);
    if (r.kind == LineResult::Kind::Matched) {
      ++matched;
      if (!r.host.empty() && !r.host_is_ip) dns_hosts[rstrip(line)] = r.host;
      if (r.host_is_ip) our_hosts.push_back(r.host);
    }
  }
  EXPECT_GT(matched, 0u);

  for (const auto& [line, verdicts] : theirs) {
    // A host *name*: fail2ban-regex resolves it, which fails in a sandbox without DNS
    // ("missed"); snigate never resolves names (it bans addresses) and reports the match.
    if (dns_hosts.count(line)) continue;
    EXPECT_EQ(ours[line], verdicts) << name << ": " << line;
  }
  for (const auto& [line, verdicts] : ours)
    EXPECT_TRUE(theirs.count(line)) << name << ": fail2ban-regex did not list " << line;

  // Hosts, in order: fail2ban-regex --out ip prints one per failure it would count.
  // Host names (see above) are left out on both sides.
  std::set<std::string> names;
  for (const auto& [line, host] : dns_hosts) names.insert(host);
  std::vector<std::string> their_hosts;
  for (const auto& h : lines_of(run("fail2ban-regex --out ip '" + log.string() + "' " + name +
                                    " 2>/dev/null")))
    if (!h.empty() && is_ip(h) && !names.count(h)) their_hosts.push_back(h);
  EXPECT_EQ(our_hosts, their_hosts) << name;
  fs::remove(log);
}

INSTANTIATE_TEST_SUITE_P(Debian, StockFilter,
                         ::testing::Values("sshd", "nginx-http-auth", "nginx-limit-req",
                                           "nginx-botsearch", "nginx-bad-request", "apache-auth",
                                           "apache-badbots", "haproxy-http-auth", "traefik-auth"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace snigate::watch

namespace snigate::watch {
namespace {

// Python's re and PCRE2 disagree on \s, \S, \d unless told: lines with Unicode spaces,
// information separators and non-ASCII digits, judged by fail2ban-regex and by snigate.
TEST(Dialect, AgreesWithFail2banRegexOnUnicodeSpacesDigitsAndSeparators) {
  ASSERT_TRUE(fs::exists("/usr/bin/fail2ban-regex")) << "install fail2ban (tools/install-deps.sh)";
  fs::path dir = fs::temp_directory_path() / ("snigate-watch-dialect-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "dialect.conf") << "[Definition]\n"
                                         "failregex = auth fail\\s+from <HOST>\\s*$\n"
                                         "            user \\S+ denied from <HOST>$\n"
                                         "            id \\d+ bad from <HOST>$\n";
  const std::string date = "2026-11-23 12:00:00 ";
  const std::vector<std::string> lines = {
      date + "auth fail\x1f" "from 192.0.2.1",      date + "auth fail\u00a0from 192.0.2.2",
      date + "auth fail\u3000from 192.0.2.3",       date + "auth fail from 192.0.2.4\x1c",
      date + "user bob\u00a0x denied from 192.0.2.5", date + "user bob\u3000x denied from 192.0.2.6",
      date + "id \u0663\u0664 bad from 192.0.2.7",    date + "id 34 bad from 192.0.2.8",
      date + "user b\x1dob denied from 192.0.2.9",    date + "auth fail from 192.0.2.10\x1fx",
  };
  {
    std::ofstream log(dir / "dialect.log");
    for (const auto& l : lines) log << l << "\n";
  }
  auto theirs = fail2ban_verdicts(dir / "dialect.log", (dir / "dialect.conf").string());
  ASSERT_FALSE(theirs.empty()) << "fail2ban-regex printed nothing";
  Filter filter(load_filter((dir / "dialect.conf").string()));
  for (const auto& l : lines) {
    auto r = filter.process(l);
    const char* kind = r.kind == LineResult::Kind::Matched ? "Matched" : "Missed";
    // fail2ban-regex prints lines through str.rstrip(), which takes U+001C..U+001F too.
    std::string key = l;
    while (!key.empty() && (std::isspace(static_cast<unsigned char>(key.back())) ||
                            (key.back() >= '\x1c' && key.back() <= '\x1f')))
      key.pop_back();
    EXPECT_EQ(theirs[key], std::vector<std::string>{kind}) << l;
  }
  fs::remove_all(dir);
}

// Every stock filter loads as it is and its regexes compile with PCRE2; the "-common"
// files are only included by others and are not filters of their own.
TEST(StockFilters, EveryDebianFilterLoadsAndCompiles) {
  std::size_t loaded = 0;
  for (const auto& entry : fs::directory_iterator(kFail2banFilterDir)) {
    auto name = entry.path().stem().string();
    if (entry.path().extension() != ".conf" || name.ends_with("common")) continue;
    try {
      Filter filter(load_filter(name));
      filter.process("2026-11-23 11:04:05 probe line from 192.0.2.1");
      ++loaded;
    } catch (const std::exception& e) {
      ADD_FAILURE() << name << ": " << e.what();
    }
  }
  EXPECT_GT(loaded, 80u);
}

}  // namespace
}  // namespace snigate::watch
