// The ban store's disk refusing writes under the real snigated: a full disk (a 1 MiB tmpfs)
// and a read-only one (a read-only bind mount), both inside this test's own mount namespace
// so the host never sees them. Either way the ban is reported as unsaved, is enforced by the
// XDP program all the same, and reaches the store once the disk takes writes again (shown by
// a restart without pins, which rebuilds the map from the store alone).
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>

#include <cstring>

#include "daemon_fixture.h"

namespace snigate::vmtest {
namespace {

// This process in a mount namespace of its own until destroyed; what is mounted in it goes
// with it. unshare/setns of a mount namespace need a single-threaded process: the test is.
class PrivateMounts {
 public:
  PrivateMounts() : home_(::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC)) {
    if (home_ < 0 || ::unshare(CLONE_NEWNS) != 0)
      throw std::runtime_error(std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno));
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      const int err = errno;
      ::setns(home_, CLONE_NEWNS);
      throw std::runtime_error(std::string("making / private: ") + std::strerror(err));
    }
  }
  ~PrivateMounts() {
    ::setns(home_, CLONE_NEWNS);
    ::close(home_);
  }
  PrivateMounts(const PrivateMounts&) = delete;
  PrivateMounts& operator=(const PrivateMounts&) = delete;

 private:
  int home_;
};

class StoreDiskTest : public DaemonBanTest {
 protected:
  void prepare_store() override {
    mounts_.emplace();
    disk_ = store_dir_ + "/disk";
    std::filesystem::create_directories(disk_);
    ASSERT_EQ(::mount("tmpfs", disk_.c_str(), "tmpfs", 0, "size=1m,mode=0700"), 0) << std::strerror(errno);
    cfg_.store = disk_ + "/bans.db";
  }

  void TearDown() override {
    stop();
    mounts_.reset();  // the tmpfs and the bind mounts go with the namespace
    DaemonBanTest::TearDown();
  }

  // Writes a file until the disk refuses; returns the bytes written.
  std::size_t fill_disk() {
    int fd = ::open((disk_ + "/filler").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    std::vector<char> block(64 * 1024, 'x');
    std::size_t written = 0;
    for (int i = 0; fd >= 0 && i < 64; ++i) {  // 4 MiB at most: more than the tmpfs holds
      ssize_t n = ::write(fd, block.data(), block.size());
      if (n <= 0) break;
      written += static_cast<std::size_t>(n);
    }
    for (ssize_t n = 1; fd >= 0 && n > 0;) n = ::write(fd, block.data(), 1);  // the last bytes
    if (fd >= 0) ::close(fd);
    return written;
  }

  // A clean stop and a start without pins: the map is rebuilt from the store alone.
  void reboot() {
    ASSERT_EQ(stop(), 0);
    std::filesystem::remove_all(cfg_.pin_dir);
    start();
  }

  std::optional<PrivateMounts> mounts_;
  std::string disk_;
};

TEST_F(StoreDiskTest, FullDiskIsReportedTheBanHoldsAndIsSavedWhenSpaceReturns) {
  ASSERT_EQ(ctl({"ban", kB6}).exit_code, 0);
  ASSERT_EQ(unsaved(), 0);
  ASSERT_GT(fill_disk(), 0u);

  auto out = ctl({"ban", kA, "--reason", "banned while the disk is full"});
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("could not save"), std::string::npos) << out.output;
  EXPECT_FALSE(serves(kA)) << "the unsaved ban is not enforced";
  EXPECT_GE(drops(kA), 1);
  EXPECT_TRUE(serves(kB));
  EXPECT_EQ(unsaved(), 1);
  EXPECT_NE(log().find("database or disk is full"), std::string::npos) << log();

  std::filesystem::remove(disk_ + "/filler");
  EXPECT_TRUE(eventually([&] { return unsaved() == 0; })) << log();
  EXPECT_NE(log().find("ban " + std::string(kA) + " saved to disk after all"), std::string::npos)
      << log();

  reboot();
  EXPECT_NE(log().find("0 in sync, 2 restored to the map"), std::string::npos) << log();
  EXPECT_FALSE(serves(kA));
  EXPECT_FALSE(serves(kB6));
  EXPECT_TRUE(serves(kB));
}

TEST_F(StoreDiskTest, ReadOnlyStoreAtStartKeepsBansAndSavesNewOnesOnceWritable) {
  ASSERT_EQ(ctl({"ban", kA}).exit_code, 0);
  ASSERT_EQ(stop(), 0);
  // The same directory, read-only from here on (the daemon is down, so nothing holds it open).
  ASSERT_EQ(::mount(disk_.c_str(), disk_.c_str(), nullptr, MS_BIND, nullptr), 0) << std::strerror(errno);
  ASSERT_EQ(::mount(nullptr, disk_.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr), 0)
      << std::strerror(errno);

  start();
  ASSERT_TRUE(daemon_ && daemon_->process().alive()) << log();
  EXPECT_NE(log().find("read-only"), std::string::npos) << log();
  EXPECT_NE(log().find("1 in sync"), std::string::npos) << log();
  EXPECT_FALSE(serves(kA)) << "the ban made before was dropped";

  auto out = ctl({"ban", kA6});
  ASSERT_EQ(out.exit_code, 0) << out.output;
  EXPECT_NE(out.output.find("could not save"), std::string::npos) << out.output;
  EXPECT_FALSE(serves(kA6));
  EXPECT_TRUE(serves(kB6));
  EXPECT_GE(drops(kA6), 1);
  EXPECT_EQ(unsaved(), 1);

  // Writable again, as after `mount -o remount,rw`; the daemon's read-only handle stays open.
  ASSERT_EQ(::mount(nullptr, disk_.c_str(), nullptr, MS_REMOUNT | MS_BIND, nullptr), 0)
      << std::strerror(errno);
  EXPECT_TRUE(eventually([&] { return unsaved() == 0; })) << log();

  reboot();
  EXPECT_NE(log().find("0 in sync, 2 restored to the map"), std::string::npos) << log();
  EXPECT_FALSE(serves(kA));
  EXPECT_FALSE(serves(kA6));
  EXPECT_TRUE(serves(kB6));
}

}  // namespace
}  // namespace snigate::vmtest
