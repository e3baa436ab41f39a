// `snigated --check -c FILE` reads every section the daemon would run, not only listeners and
// routes: a bad [bans], [remote_ban], [resolver], [metrics] or [[jail]] (even a jail whose filter regex
// does not compile) fails the check with the file and line, before any daemon is started.
#include <sys/utsname.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

const std::string kCore = R"([daemon]
control_socket = "/tmp/never-bound.sock"
[[listener]]
name = "tls"
listen = "127.0.3.1:0"
table = "edge"
[table.edge]
default = "b"
[backend.b]
servers = ["127.0.3.1:9"]
)";  // 10 lines; a section below written after a blank line starts on line 12

RunResult check(const TempDir& dir, const std::string& extra) {
  write_file(dir / "c.toml", kCore + extra);
  return run({SNIGATED_PATH, "--check", "-c", (dir / "c.toml").string()});
}

// The error names c.toml and `line`, and says `what`.
void expect_error_at(const RunResult& r, int line, const std::string& what) {
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(fmt::format("c.toml:{}:", line)), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(what), std::string::npos) << r.output;
}

TEST(Check, EverySectionIsSummarised) {
  TempDir dir;
  write_file(dir / "token", std::string(40, 'k'));
  fs::permissions(dir / "token", fs::perms::owner_read | fs::perms::owner_write);
  RunResult r = check(dir, fmt::format(R"(
[bans]
store = "{0}/bans.db"
ignore = ["127.0.3.0/24"]
[remote_ban]
listen = "127.0.3.1:0"
token_files = ["{0}/token"]
[[jail]]
name = "sshd"
filter = "sshd"
logpath = "{0}/auth.log"
maxretry = 3
)",
                                       dir.path().string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("listener tls: tls on 127.0.3.1:0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("bans: store " + (dir / "bans.db").string()), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("remote_ban: listening on 127.0.3.1:0, 1 token(s)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("jail sshd: sshd on"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "bans.db")) << "--check must not open the ban store";
}

// The kernel report: this machine's release, what the programs need, and the relay the
// daemon would pick from it, for the configured mode and for --relay.
TEST(Check, ReportsTheKernelAndTheRelayItWouldChoose) {
  TempDir dir;
  utsname u{};
  ASSERT_EQ(uname(&u), 0);
  RunResult r = check(dir, "");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(std::string("kernel: Linux ") + u.release), std::string::npos)
      << r.output;
  for (const char* line : {"\n  sockmap: ", "\n  ban programs: ", "\n  splice: yes\n"})
    EXPECT_NE(r.output.find(line), std::string::npos) << line << "\n" << r.output;
  // auto: copy splicing bulk, over the kernel relay where this process may load its
  // programs (root).
  EXPECT_TRUE(r.output.find("relay: sockmap (requested auto: copy, splice(2) for bulk bursts; "
                            "connections that prove interactive go to the kernel (sockmap))") !=
                  std::string::npos ||
              r.output.find("relay: splice (requested auto: copy, splice(2) for bulk bursts; "
                            "sockmap unavailable for interactive connections: ") !=
                  std::string::npos)
      << r.output;
  r = run({SNIGATED_PATH, "--check", "-c", (dir / "c.toml").string(), "--relay", "copy"});
  EXPECT_NE(r.output.find("relay: copy (requested copy: configured relay = copy)"),
            std::string::npos)
      << r.output;
}

// Without bpf() (an unprivileged user), a configured sockmap relay and the ban programs fall
// back, and the report names the missing piece: never an error.
TEST(Check, WithoutBpfTheRelayAndTheBansFallBackAndSayWhy) {
  TempDir dir;
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read |
                                  fs::perms::group_exec | fs::perms::others_read |
                                  fs::perms::others_exec);
  write_file(dir / "c.toml", "[daemon]\nrelay = \"sockmap\"\n" + kCore.substr(9) +
                                 "[bans]\nstore = \"" + (dir / "bans.db").string() +
                                 "\"\ninterfaces = [\"lo\"]\n");
  fs::permissions(dir / "c.toml", fs::perms::owner_read | fs::perms::owner_write |
                                      fs::perms::group_read | fs::perms::others_read);
  std::vector<std::string> argv{SNIGATED_PATH, "--check", "-c", (dir / "c.toml").string()};
  // As root, drop to nobody with no capabilities; otherwise this user is unprivileged already.
  if (geteuid() == 0)
    argv.insert(argv.begin(), {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               "--inh-caps=-all", "--bounding-set=-all"});
  RunResult r = run(argv);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("  sockmap: no: sockhash maps: bpf() refused: Operation not "
                          "permitted (needs CAP_BPF, or root)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("relay: splice (requested sockmap: sockmap unavailable: sockhash maps: "
                          "bpf() refused"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("bans enforced by: at accept time only (no BPF ban programs: XDP "
                          "programs: bpf() refused"),
            std::string::npos)
      << r.output;
}

TEST(Check, BadJailKeyNamesItsLine) {
  TempDir dir;
  expect_error_at(check(dir, R"(
[[jail]]
name = "web"
logpath = "/var/log/nginx/access.log"
failregex = "^<HOST> "
maxretry = "five"
)"),
                  16, "maxretry");
  expect_error_at(check(dir, R"(
[[jail]]
name = "web"
logpath = "/var/log/nginx/access.log"
failregex = "^<HOST> "
bantme = "1h"
)"),
                  16, "bantme");
}

TEST(Check, JailRegexThatDoesNotCompileNamesTheJail) {
  TempDir dir;
  RunResult r = check(dir, R"(
[[jail]]
name = "web"
logpath = "/var/log/nginx/access.log"
failregex = "^<HOST> (unclosed"
)");
  expect_error_at(r, 12, "jail 'web'");
  RunResult missing = check(dir, R"(
[[jail]]
name = "nofilter"
logpath = "/var/log/x.log"
filter = "no-such-filter-anywhere"
)");
  expect_error_at(missing, 12, "jail 'nofilter'");
}

// fail2ban refuses a failregex with no host group ("No failure-id group"): it can never ban.
TEST(Check, JailFailregexWithoutHostIsRefused) {
  TempDir dir;
  expect_error_at(check(dir, R"(
[[jail]]
name = "web"
logpath = "/var/log/app.log"
failregex = "^login failed for \\S+$"
)"),
                  12, "has no <HOST>");
}

// A failregex that backtracks exponentially passes --check with a warning naming it.
TEST(Check, CatastrophicJailRegexIsWarnedAbout) {
  TempDir dir;
  RunResult r = check(dir, R"(
[[jail]]
name = "web"
logpath = "/var/log/app.log"
failregex = ["^(a+)+$ <HOST>", "^login failed from <HOST>$"]
)");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("c.toml:12: jail 'web': regex '^(a+)+$ <HOST>' gives up at PCRE2's "
                          "match limit"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("warning: "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("login failed from <HOST>$' gives up"), std::string::npos) << r.output;
}

TEST(Check, BadBanSettingNamesItsLine) {
  TempDir dir;
  expect_error_at(check(dir, R"(
[bans]
ignore = ["10.0.0.300/8"]
)"),
                  13, "ignore");
  expect_error_at(check(dir, R"(
[bans]
repeat_factor = 0.5
)"),
                  13, "repeat_factor");
  expect_error_at(check(dir, R"(
[bans]
pin_dir = "relative/path"
)"),
                  13, "pin_dir");
}

TEST(Check, BadRemoteChannelAndResolverNameTheirLines) {
  TempDir dir;
  expect_error_at(check(dir, R"(
[remote_ban]
listen = "127.0.3.1:7443"
tokens = ["short"]
)"),
                  14, "tokens");
  expect_error_at(check(dir, R"(
[resolver]
servers = ["127.0.3.53"]
timeout = "soon"
)"),
                  14, "soon");
}

TEST(Check, RemoteChannelWithBansOffIsRefused) {
  TempDir dir;
  RunResult r = check(dir, R"(
[bans]
enabled = false
[remote_ban]
listen = "127.0.3.1:7443"
tokens = ["0123456789abcdef0123456789abcdef"]
)");
  expect_error_at(r, 14, "needs bans on");
}

// Configurations that pass the parsers but could never start: the remote channel on a
// listener's port, one file for two uses.
TEST(Check, SocketsAndFilesThatCollideAreRefused) {
  TempDir dir;
  const std::string listener = R"(
[[listener]]
name = "fixed"
listen = "0.0.0.0:7443"
table = "edge"
)";
  expect_error_at(check(dir, listener + R"(
[remote_ban]
listen = "127.0.3.1:7443"
tokens = ["0123456789abcdef0123456789abcdef"]
)"),
                  18, "takes the port of listener fixed");
  write_file(dir / "d.toml", "[daemon]\ncontrol_socket = \"/tmp/same\"\naccess_log = "
                             "\"/tmp/./same\"\n" + kCore.substr(kCore.find("[[listener]]")));
  RunResult same = run({SNIGATED_PATH, "--check", "-c", (dir / "d.toml").string()});
  EXPECT_EQ(same.exit_code, 1) << same.output;
  EXPECT_NE(same.output.find("d.toml:3:14: 'access_log' and 'control_socket' are the same file"),
            std::string::npos)
      << same.output;
  expect_error_at(check(dir, "\n[bans]\nstore = \"/tmp/never-bound.sock\"\n"), 2,
                  "'control_socket' is the ban store's file");
  // Different ports, and a listener on port 0, are fine.
  EXPECT_EQ(check(dir, R"(
[remote_ban]
listen = "127.0.3.1:7444"
tokens = ["0123456789abcdef0123456789abcdef"]
)").exit_code, 0);
}

TEST(Check, MetricsEndpointIsSummarisedAndItsMistakesNamed) {
  TempDir dir;
  RunResult ok = check(dir, "\n[metrics]\nlisten = \"127.0.0.1:9100\"\n");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("metrics: http://127.0.0.1:9100/metrics"), std::string::npos)
      << ok.output;
  expect_error_at(check(dir, "\n[metrics]\nlisten = \"localhost:9100\"\n"), 13,
                  "[metrics] listen");
  expect_error_at(check(dir, "\n[metrics]\nlisten = \"0.0.0.0:7443\"\n"
                             "[[listener]]\nname = \"fixed\"\nlisten = \"127.0.3.1:7443\"\n"
                             "table = \"edge\"\n"),
                  13, "takes the port of listener fixed");
}

TEST(Check, RegexWithNestedRepeatsIsWarnedAboutAtItsLine) {
  TempDir dir;
  write_file(dir / "r.toml", R"([daemon]
control_socket = "/tmp/never-bound.sock"
[[listener]]
listen = "127.0.3.1:0"
table = "edge"
[table.edge]
"~^(a+)+$" = "b"
"~^api[0-9]+\\.example$" = "b"
[backend.b]
servers = ["127.0.3.1:9"]
)");
  RunResult r = run({SNIGATED_PATH, "--check", "-c", (dir / "r.toml").string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: " + (dir / "r.toml").string() + ":7:1: regex \"~^(a+)+$\""),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("api[0-9]"), r.output.rfind("api[0-9]")) << r.output;  // no warning
}

}  // namespace
}  // namespace snigate::itest
