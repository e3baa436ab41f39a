// Started as root with [daemon] user = "nobody", snigated binds, loads and pins what needs root,
// then runs as nobody with CAP_NET_BIND_SERVICE, CAP_NET_ADMIN and CAP_BPF only (CAP_PERFMON
// too when the sockmap relay runs): so /proc says for every thread, and it still relays bytes
// and bans through `snigatectl ban`. A symlink where a file it hands over should be is left alone.
#include <linux/capability.h>
#include <pwd.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "daemon_fixture.h"

namespace snigate::vmtest {
namespace {

std::map<std::string, std::string> proc_status(const std::filesystem::path& file) {
  std::map<std::string, std::string> fields;
  std::istringstream in(itest::read_file(file));
  for (std::string line; std::getline(in, line);)
    if (auto colon = line.find(':'); colon != std::string::npos) {
      const auto value = line.find_first_not_of(" \t", colon + 1);  // "Groups:" may be empty
      fields[line.substr(0, colon)] = value == std::string::npos ? "" : line.substr(value);
    }
  return fields;
}

std::string cap_mask(std::initializer_list<int> caps) {
  std::uint64_t m = 0;
  for (int c : caps) m |= std::uint64_t{1} << c;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(m));
  return buf;
}

class PrivilegeDropTest : public DaemonBanTest, public ::testing::WithParamInterface<std::string> {
 protected:
  std::string relay() const override { return GetParam(); }
  std::string daemon_extra() const override { return "user = \"nobody\"\n"; }
  // As an operator would (or systemd's StateDirectory=): the store's directory is the user's.
  void prepare_store() override {
    const passwd* nobody = ::getpwnam("nobody");
    ASSERT_NE(nobody, nullptr);
    ASSERT_EQ(::chown(store_dir_.c_str(), nobody->pw_uid, nobody->pw_gid), 0);
  }
};

TEST_P(PrivilegeDropTest, RunsAsTheUserWithOnlyTheNeededCapabilitiesAndStillRelaysAndBans) {
  const passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  const std::string id = std::to_string(nobody->pw_uid);
  const std::string gid = std::to_string(nobody->pw_gid);
  const bool sockmap = log().find("relay: sockmap (") != std::string::npos;
  if (GetParam() == "sockmap" && !sockmap)
    GTEST_SKIP() << "SKIPPED LOUDLY: this kernel offers no sockmap relay; the daemon's log:\n"
                 << log();
  std::string want = sockmap ? cap_mask({CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_BPF, CAP_PERFMON})
                             : cap_mask({CAP_NET_BIND_SERVICE, CAP_NET_ADMIN, CAP_BPF});
  EXPECT_NE(log().find("privileges: dropped to user nobody (uid " + id + ")"), std::string::npos)
      << log();

  // Every thread: the workers, the ban sweeper, the main loop.
  const auto tasks = std::filesystem::path("/proc") / std::to_string(daemon_->process().pid()) / "task";
  int threads = 0;
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    ++threads;
    auto st = proc_status(task.path() / "status");
    SCOPED_TRACE(task.path().string());
    EXPECT_EQ(st["Uid"], id + "\t" + id + "\t" + id + "\t" + id);
    EXPECT_EQ(st["Gid"], gid + "\t" + gid + "\t" + gid + "\t" + gid);
    std::istringstream groups(st["Groups"]);
    for (std::string g; groups >> g;) EXPECT_NE(g, "0") << "root's group kept: " << st["Groups"];
    EXPECT_EQ(st["CapEff"], want);
    EXPECT_EQ(st["CapPrm"], want);
    EXPECT_EQ(st["CapBnd"], want);
    EXPECT_EQ(st["CapInh"], cap_mask({}));
    EXPECT_EQ(st["CapAmb"], cap_mask({}));
  }
  EXPECT_GE(threads, 3);  // main, one worker, the sweeper

  // Bytes both ways through the daemon.
  Relayed live;
  request(live, kA, kPlain);
  ASSERT_GE(live.backend, 0) << log();
  const std::string down = "from the backend\n";
  ASSERT_EQ(::send(live.backend, down.data(), down.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(down.size()));
  std::string got(down.size(), '\0');
  ASSERT_EQ(::recv(live.client, got.data(), got.size(), MSG_WAITALL),
            static_cast<ssize_t>(down.size()));
  EXPECT_EQ(got, down);

  // A ban as nobody: the map updated, the store written, the live connection ended, the SYNs
  // of the next one dropped.
  auto out = ctl({"ban", kA, "--reason", "privilege-drop vm-test"});
  ASSERT_EQ(out.exit_code, 0) << out.output << log();
  EXPECT_TRUE(ended(live.client));
  EXPECT_FALSE(serves(kA));
  EXPECT_TRUE(serves(kB));
  EXPECT_GE(drops(kA), 1);
  EXPECT_EQ(unsaved(), 0) << log();
}

// The files handed to the user before the drop are its own only: a symlink planted where the
// access log goes (in a directory the user may own) keeps its target root's.
TEST(PrivilegeDrop, ASymlinkInTheLogsPlaceIsNotFollowed) {
  if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED LOUDLY: the drop needs root";
  itest::TempDir dir;
  itest::write_file(dir / "target", "root's\n");
  std::filesystem::create_symlink(dir / "target", dir / "access.log");
  itest::Snigated d(dir, itest::http_config(9, "user = \"nobody\"\n"));
  EXPECT_NE(d.process().log().find("access.log not given to uid"), std::string::npos)
      << d.process().log();
  struct stat st {};
  ASSERT_EQ(::stat((dir / "target").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << "the link's target was handed to nobody";
  EXPECT_NE(d.process().log().find("privileges: dropped to user nobody"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Relay, PrivilegeDropTest, ::testing::Values("copy", "sockmap"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace snigate::vmtest
