#pragma once
// The ban vm-tests' fixture: an edge and a client namespace, a listener in the edge, a scratch
// pin directory on bpffs and a scratch store, and BanManager::open run inside the edge.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <optional>

#include "bans/ban_manager.h"
#include "netns.h"

namespace snigate::vmtest {

inline bool on_bpffs(const char* path) {
  struct statfs fs {};
  return ::statfs(path, &fs) == 0 && fs.f_type == 0xcafe4a11;  // BPF_FS_MAGIC
}

class BanVmTest : public ::testing::Test {
 protected:
  static constexpr const char* kEdge4 = "10.5.0.1";
  static constexpr const char* kEdge6 = "fd00:5::1";

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED LOUDLY: ban vm-tests need root (CAP_BPF, CAP_NET_ADMIN)";
    if (!on_bpffs("/sys/fs/bpf"))
      GTEST_SKIP() << "SKIPPED LOUDLY: no bpffs at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)";
    net_.emplace(std::vector<std::string>{"10.5.1.1", "10.5.1.2", "10.5.2.1", "10.5.2.2",
                                          "fd00:5::a", "fd00:5::b"});
    edge_.emplace(net_->edge_fd());  // the XDP attach and the sweeper happen in the edge
    listener_.emplace(net_->edge_fd());
    pin_root_ = "/sys/fs/bpf/sg-ban-test-" + std::to_string(::getpid());
    cfg_.pin_dir = pin_root_ + "/v1";
    std::string tmpl = (std::filesystem::temp_directory_path() / "sg-ban-vm-XXXXXX").string();
    store_dir_ = ::mkdtemp(tmpl.data());
    cfg_.store = store_dir_ + "/bans.db";
    cfg_.interfaces = {net_->edge_if()};
    cfg_.sweep_interval = std::chrono::seconds(1);
  }

  void TearDown() override {
    manager_.reset();
    listener_.reset();
    edge_.reset();
    net_.reset();
    std::error_code ec;
    if (!pin_root_.empty()) std::filesystem::remove_all(pin_root_, ec);
    if (!store_dir_.empty()) std::filesystem::remove_all(store_dir_, ec);
  }

  void open_manager() {
    std::string error;
    manager_ = bans::BanManager::open(cfg_, &registry_, error);
    ASSERT_TRUE(manager_) << error;
  }

  bans::BanOutcome ban(const char* text, std::optional<std::chrono::seconds> duration = {}) {
    bans::BanRequest r;
    r.prefix = *net::Prefix::parse(text);
    r.duration = duration;
    r.reason = "vm-test";
    r.source = "ctl";
    return manager_->ban(r);
  }

  bool reaches(const char* source) {
    const bool v6 = std::string_view(source).find(':') != std::string_view::npos;
    return can_connect(net_->client_fd(), source, v6 ? kEdge6 : kEdge4, listener_->port());
  }

  std::uint64_t drops_of(const char* prefix) {
    for (const auto& b : manager_->list())
      if (b.prefix.str() == prefix) return b.drops;
    return 0;
  }

  std::optional<BanNetns> net_;
  std::optional<EnterNetns> edge_;
  std::optional<Listener> listener_;
  std::string pin_root_, store_dir_;
  bans::BansConfig cfg_;
  conns::ConnRegistry registry_;
  std::unique_ptr<bans::BanManager> manager_;
};

}  // namespace snigate::vmtest
