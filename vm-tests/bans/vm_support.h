#pragma once
// The ban vm-tests' fixture: vm-tests/lib's client/edge/backend namespaces (sg-ban-PID-*,
// 10.5.x.x and fd00:5:: only inside them) with more source addresses on the client, a
// listener in the edge, a scratch pin directory on bpffs and a scratch store. BanManager is
// opened and closed inside the edge, where its XDP/TC attachments live.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <optional>

#include "bans/ban_manager.h"
#include "bpffs.h"
#include "netns.h"
#include "peers.h"

namespace snigate::vmtest {

class BanVmTest : public ::testing::Test {
 protected:
  // Client sources beside the topology's own 10.5.1.1 and fd00:5:1::1 (the edge is .2/::2).
  static constexpr const char* kA = "10.5.1.10";  // banned by the tests
  static constexpr const char* kB = "10.5.1.11";  // never banned
  static constexpr const char* kNet = "10.5.1.16/28";
  static constexpr const char* kN1 = "10.5.1.17";  // inside kNet
  static constexpr const char* kN2 = "10.5.1.18";  // inside kNet
  static constexpr const char* kProxy = "10.5.1.30";
  static constexpr const char* kA6 = "fd00:5:1::a";
  static constexpr const char* kB6 = "fd00:5:1::b";
  static constexpr const char* kEdgeIf = "veth0";  // the edge's side of the client link

  void SetUp() override {
    if (auto why = netns_unavailable(); !why.empty())
      GTEST_SKIP() << "SKIPPED LOUDLY: ban vm-tests " << why;
    if (!on_bpffs("/sys/fs/bpf"))
      GTEST_SKIP() << "SKIPPED LOUDLY: no bpffs at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)";
    remove_stale_pins();
    net_.emplace("sg-ban", 5);
    for (const char* a : {kA, kB, kN1, kN2, kProxy})
      run("ip -n " + net_->client() + " addr add " + a + "/24 dev veth0");
    for (const char* a : {kA6, kB6})
      run("ip -n " + net_->client() + " addr add " + a + "/64 dev veth0 nodad");
    listener_.emplace(net_->edge());
    pin_root_ = scratch_pin_root();
    cfg_.pin_dir = pin_root_ + "/v1";
    std::string tmpl = (std::filesystem::temp_directory_path() / "sg-ban-vm-XXXXXX").string();
    store_dir_ = ::mkdtemp(tmpl.data());
    cfg_.store = store_dir_ + "/bans.db";
    cfg_.interfaces = {kEdgeIf};
    cfg_.sweep_interval = std::chrono::seconds(1);
  }

  void TearDown() override {
    close_manager();
    listener_.reset();
    net_.reset();
    std::error_code ec;
    if (!pin_root_.empty()) std::filesystem::remove_all(pin_root_, ec);
    if (!store_dir_.empty()) std::filesystem::remove_all(store_dir_, ec);
  }

  void open_manager() {
    std::string error;
    in_netns(net_->edge(), [&] { manager_ = bans::BanManager::open(cfg_, &registry_, error); });
    ASSERT_TRUE(manager_) << error;
  }
  // Starts a second daemon's bans (another pin_dir and store) on the same interface, expects
  // it refused, and returns its error.
  std::string open_second_instance() {
    bans::BansConfig second = cfg_;
    second.pin_dir = pin_root_ + "/second";
    second.store = store_dir_ + "/second.db";
    std::string error;
    std::unique_ptr<bans::BanManager> other;
    in_netns(net_->edge(), [&] { other = bans::BanManager::open(second, nullptr, error); });
    EXPECT_FALSE(other);
    return error;
  }
  // A clean exit: detaches from the edge's interface (by index, so from inside the edge).
  void close_manager() {
    if (manager_) in_netns(net_->edge(), [&] { manager_.reset(); });
  }

  // What the manager reports, asked from inside the edge: the report queries the kernel for
  // what is attached now, by interface index, in the caller's namespace.
  std::vector<std::string> enforcement() {
    std::vector<std::string> out;
    in_netns(net_->edge(), [&] { out = manager_->enforcement(); });
    return out;
  }

  bans::BanOutcome ban(const char* text, std::optional<std::chrono::seconds> duration = {}) {
    bans::BanRequest r;
    r.prefix = *net::Prefix::parse(text);
    r.duration = duration;
    r.reason = "vm-test";
    r.source = "ctl";
    return manager_->ban(r);
  }

  static bool is_v6(const std::string& a) { return a.find(':') != std::string::npos; }
  std::string edge_for(const std::string& source) const {
    return is_v6(source) ? net_->v6().edge_front : net_->v4().edge_front;
  }
  // A connection from `source` to the edge's listener gets through.
  bool reaches(const char* source) {
    return can_connect(net_->client(), source, edge_for(source), listener_->port());
  }

  std::uint64_t drops_of(const char* prefix) {
    for (const auto& b : manager_->list())
      if (b.prefix.str() == prefix) return b.drops;
    return 0;
  }

  std::optional<Topology> net_;
  std::optional<Listener> listener_;
  std::string pin_root_, store_dir_;
  bans::BansConfig cfg_;
  conns::ConnRegistry registry_;
  std::unique_ptr<bans::BanManager> manager_;
};

}  // namespace snigate::vmtest
