// [daemon] user and group: a name that does not exist is refused by `snigated --check` with the
// file and line, and by a start before anything is bound; an existing one is named in the
// check's summary. (The drop itself, as root, is vm-tests/bans/privilege_drop_vm_test.cpp.)
#include <gtest/gtest.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

std::string config(const TempDir& dir, const std::string& daemon_lines) {
  return "[daemon]\n" + daemon_lines + "control_socket = \"" + (dir / "ctl.sock").string() +
         "\"\n[bans]\nenabled = false\n[[listener]]\nname = \"h\"\nlisten = \"127.0.3.1:0\"\n"
         "protocol = \"http\"\ntable = \"t\"\n[table.t]\ndefault = \"b\"\n[backend.b]\n"
         "servers = [\"127.0.3.1:9\"]\n";
}

RunResult check(const TempDir& dir, const std::string& daemon_lines) {
  write_file(dir / "c.toml", config(dir, daemon_lines));
  return run({SNIGATED_PATH, "--check", "-c", (dir / "c.toml").string()});
}

TEST(PrivilegesConfig, CheckRefusesAMissingUserOrGroupAtItsLine) {
  TempDir dir;
  RunResult r = check(dir, "user = \"no-such-user-sg18\"\n");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("c.toml:2:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no such user; create it (adduser --system"), std::string::npos)
      << r.output;

  r = check(dir, "user = \"nobody\"\ngroup = \"no-such-group-sg18\"\n");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("c.toml:3:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no such group"), std::string::npos) << r.output;

  r = check(dir, "group = \"nogroup\"\n");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("'group' needs 'user'"), std::string::npos) << r.output;
}

TEST(PrivilegesConfig, CheckNamesTheUserItWouldRunAs) {
  TempDir dir;
  RunResult r = check(dir, "user = \"nobody\"\n");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("privileges: started as root, runs as user nobody (uid "),
            std::string::npos) << r.output;
  r = check(dir, "");
  EXPECT_NE(r.output.find("privileges: kept as started (no [daemon] user)"), std::string::npos)
      << r.output;
}

TEST(PrivilegesConfig, StartWithAMissingUserFailsSayingWhy) {
  TempDir dir;
  write_file(dir / "c.toml", config(dir, "user = \"no-such-user-sg18\"\n"));
  RunResult r = run({SNIGATED_PATH, "-c", (dir / "c.toml").string()}, {}, 20s);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("[daemon] user = \"no-such-user-sg18\": no such user"),
            std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("bound to"), std::string::npos) << "bound before failing: " << r.output;
  EXPECT_EQ(r.output.find("snigated ready"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace snigate::itest
