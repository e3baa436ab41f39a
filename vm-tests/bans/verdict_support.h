#pragma once
// The ban program tested as a program (after Katran's BpfTester and Cilium's bpf/tests): the
// real object from bpf/ban.bpf.c loaded by BpfBanMap with its maps pinned in a scratch
// directory, attached nowhere, frames handed to its XDP or its TC entry with
// BPF_PROG_TEST_RUN. Each case: seed the tries, run frames, check verdict and counters.
// Root and bpffs only; no network namespace, no link.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "bans/bpf_ban_map.h"
#include "bpffs.h"
#include "frame.h"

namespace snigate::vmtest {

// One of the program's two entries, with what it returns for drop and for pass.
struct Hook {
  const char* name;
  int (bans::BpfBanMap::*prog_fd)() const;
  int drop, pass;
  bool skb;  // the kernel builds an sk_buff around the frame (TC), not an xdp_buff
};
inline const Hook kXdp{"xdp", &bans::BpfBanMap::xdp_prog_fd, XDP_DROP, XDP_PASS, false};
inline const Hook kTc{"tc", &bans::BpfBanMap::tc_prog_fd, TC_ACT_SHOT, TC_ACT_UNSPEC, true};
inline std::string hook_name(const ::testing::TestParamInfo<Hook>& info) {
  return info.param.name;
}
inline void PrintTo(const Hook& hook, std::ostream* os) { *os << hook.name; }

class BanVerdictTest : public ::testing::TestWithParam<Hook> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED LOUDLY: ban verdict tests need root (BPF)";
    if (!on_bpffs("/sys/fs/bpf"))
      GTEST_SKIP() << "SKIPPED LOUDLY: no bpffs at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)";
    remove_stale_pins();
    pin_root_ = scratch_pin_root();
    std::string error;
    map_ = bans::BpfBanMap::open(pin_root_ + "/v1", {}, error);
    ASSERT_TRUE(map_) << error;
  }
  void TearDown() override {
    map_.reset();
    std::error_code ec;
    if (!pin_root_.empty()) std::filesystem::remove_all(pin_root_, ec);
  }

  void ban(const net::Prefix& prefix, std::uint64_t expires_ns = 0) {
    std::string error;
    ASSERT_TRUE(map_->put({prefix, expires_ns, 0}, error)) << error;
  }
  void ban(const char* prefix, std::uint64_t expires_ns = 0) {
    ban(*net::Prefix::parse(prefix), expires_ns);
  }

  // The program's verdict on `frame`: true for drop, false for pass; nullopt when the kernel
  // refused to run it (EINVAL). A verdict that is neither drop nor pass fails.
  std::optional<bool> verdict(const std::vector<std::uint8_t>& frame) {
    const int fd = (map_.get()->*GetParam().prog_fd)();
    LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame.data(),
                .data_size_in = static_cast<__u32>(frame.size()), .repeat = 1);
    const int err = bpf_prog_test_run_opts(fd, &run);
    if (err == -EINVAL) return std::nullopt;
    EXPECT_EQ(err, 0) << "BPF_PROG_TEST_RUN on a " << frame.size() << "-byte frame: "
                      << std::strerror(-err);
    const int verdict = static_cast<int>(run.retval);
    EXPECT_TRUE(verdict == GetParam().drop || verdict == GetParam().pass) << verdict;
    return err == 0 && verdict == GetParam().drop;
  }
  // True when the program drops `frame`, which the kernel must accept.
  bool drops(const std::vector<std::uint8_t>& frame) {
    const auto v = verdict(frame);
    EXPECT_TRUE(v) << "BPF_PROG_TEST_RUN refused a " << frame.size() << "-byte frame (EINVAL)";
    return v.value_or(false);
  }
  bool drops(const Frame& frame) { return drops(frame.bytes()); }

  // The drops counted on the ban for exactly `prefix`.
  std::uint64_t drops_of(const net::Prefix& prefix) const {
    for (const auto& b : map_->entries())
      if (b.prefix == prefix) return b.drops;
    return 0;
  }
  std::uint64_t drops_of(const char* prefix) const { return drops_of(*net::Prefix::parse(prefix)); }

  std::string pin_root_;
  std::unique_ptr<bans::BpfBanMap> map_;
};

inline boost::asio::ip::address addr(const char* text) {
  return boost::asio::ip::make_address(text);
}

}  // namespace snigate::vmtest
