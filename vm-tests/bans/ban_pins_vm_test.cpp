// Pins and attachments in the situations a real host produces: an incompatible pin left by
// another version, an XDP program of someone else's on the interface, a daemon that died.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sys/wait.h>

#include "snigate/bpf/ban_abi.h"
#include "vm_support.h"

namespace snigate::vmtest {
namespace {

using namespace std::chrono_literals;

TEST_F(BanVmTest, IncompatiblePinIsAClearError) {
  std::filesystem::create_directories(cfg_.pin_dir);
  // A hash map where an LPM trie belongs, as an older layout might have left.
  int fd = bpf_map_create(BPF_MAP_TYPE_HASH, SNIGATE_BAN_MAP_V4, 8, 8, 16, nullptr);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(bpf_obj_pin(fd, (cfg_.pin_dir + "/" SNIGATE_BAN_MAP_V4).c_str()), 0);
  ::close(fd);
  std::string error;
  std::unique_ptr<bans::BanManager> opened;
  in_netns(net_->edge(), [&] { opened = bans::BanManager::open(cfg_, &registry_, error); });
  EXPECT_FALSE(opened);
  EXPECT_NE(error.find("another snigate version"), std::string::npos) << error;
  EXPECT_NE(error.find(cfg_.pin_dir), std::string::npos) << error;
}

// XDP_PASS, named so it is clearly not ours.
int foreign_xdp_program() {
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  return bpf_prog_load(BPF_PROG_TYPE_XDP, "other_xdp", "GPL", insns, 2, nullptr);
}

TEST_F(BanVmTest, SomeoneElsesXdpProgramIsLeftAloneAndTcEnforces) {
  int ifindex = 0;
  int other = foreign_xdp_program();
  ASSERT_GE(other, 0);
  int attached = -1;
  in_netns(net_->edge(), [&] {
    ifindex = static_cast<int>(if_nametoindex(kEdgeIf));
    attached = bpf_xdp_attach(ifindex, other, XDP_FLAGS_DRV_MODE, nullptr);
  });
  ASSERT_EQ(attached, 0);
  open_manager();
  ASSERT_EQ(enforcement().size(), 1u);
  EXPECT_EQ(enforcement()[0], std::string(kEdgeIf) + ": tc ingress");
  ASSERT_TRUE(ban(kA6).ok);
  EXPECT_FALSE(reaches(kA6));
  EXPECT_TRUE(reaches(kB6));
  EXPECT_GE(drops_of(kA6), 1u);
  bpf_prog_info info{};
  __u32 len = sizeof info;
  ASSERT_EQ(bpf_obj_get_info_by_fd(other, &info, &len), 0);
  auto xdp_id = [&] {
    __u32 id = 0;
    in_netns(net_->edge(), [&] { bpf_xdp_query_id(ifindex, XDP_FLAGS_DRV_MODE, &id); });
    return id;
  };
  EXPECT_EQ(xdp_id(), info.id);  // still theirs

  close_manager();  // our tc filter goes, theirs stays
  EXPECT_TRUE(reaches(kA6));
  EXPECT_EQ(xdp_id(), info.id);
  ::close(other);
}

// A daemon that dies leaves its program attached, so bans hold while it is down; the next
// start takes the interface over instead of falling back to TC.
TEST_F(BanVmTest, ProgramOfADeadDaemonKeepsEnforcingAndIsTakenOver) {
  pid_t child = -1;
  in_netns(net_->edge(), [&] {
    child = ::fork();
    if (child != 0) return;
    // The child stays in the edge: it never returns from here.
    std::string error;
    auto m = bans::BanManager::open(cfg_, nullptr, error);
    bans::BanRequest r;
    r.prefix = *net::Prefix::parse(kA);
    r.source = "ctl";
    ::_exit(m && m->ban(r).ok ? 0 : 1);  // no destructors: as if killed
  });
  ASSERT_GE(child, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_FALSE(reaches(kA));
  EXPECT_TRUE(reaches(kB));

  open_manager();
  EXPECT_EQ(manager_->reconciled().in_sync, 1u);
  EXPECT_EQ(enforcement()[0].rfind(std::string(kEdgeIf) + ": xdp", 0), 0u)
      << enforcement()[0];
  EXPECT_FALSE(reaches(kA));
  close_manager();  // a clean exit detaches
  EXPECT_TRUE(reaches(kA));
}

// What `tc qdisc show` says about the edge's client-facing interface.
std::string edge_qdiscs(const std::string& edge_ns, const char* dev) {
  std::string out;
  const std::string cmd = "ip netns exec " + edge_ns + " tc qdisc show dev " + dev;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[512];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
  }
  return out;
}

// A second daemon (another pin_dir) on the same interface is refused with advice; the first
// keeps enforcing and still reports what really runs.
TEST_F(BanVmTest, SecondInstanceIsRefusedNotAllowedToTakeOverXdp) {
  open_manager();
  ASSERT_TRUE(ban(kA).ok);
  EXPECT_FALSE(reaches(kA));
  const std::string error = open_second_instance();
  EXPECT_NE(error.find("another snigated"), std::string::npos) << error;
  EXPECT_NE(error.find("XDP hook"), std::string::npos) << error;
  EXPECT_FALSE(reaches(kA));  // still enforced by the first
  const auto report = enforcement();
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0].rfind(std::string(kEdgeIf) + ": xdp", 0), 0u) << report[0];
  EXPECT_EQ(report[0].find("NOT ENFORCING"), std::string::npos) << report[0];
}

// The same with TC (XDP held by someone else's program): the second daemon may not replace
// the first one's filter, and the clsact qdisc the first one added goes when it stops.
TEST_F(BanVmTest, SecondInstanceIsRefusedOnTcAndTheQdiscGoesWithTheFirst) {
  int other_prog = foreign_xdp_program();
  ASSERT_GE(other_prog, 0);
  int attached = -1;
  in_netns(net_->edge(), [&] {
    attached = bpf_xdp_attach(static_cast<int>(if_nametoindex(kEdgeIf)), other_prog,
                              XDP_FLAGS_DRV_MODE, nullptr);
  });
  ASSERT_EQ(attached, 0);
  EXPECT_EQ(edge_qdiscs(net_->edge(), kEdgeIf).find("clsact"), std::string::npos);
  open_manager();
  ASSERT_EQ(enforcement()[0], std::string(kEdgeIf) + ": tc ingress");
  ASSERT_TRUE(ban(kA6).ok);
  EXPECT_FALSE(reaches(kA6));
  const std::string error = open_second_instance();
  EXPECT_NE(error.find("tc ingress filter"), std::string::npos) << error;
  EXPECT_FALSE(reaches(kA6));
  EXPECT_NE(edge_qdiscs(net_->edge(), kEdgeIf).find("clsact"), std::string::npos);
  close_manager();
  EXPECT_EQ(edge_qdiscs(net_->edge(), kEdgeIf).find("clsact"), std::string::npos)
      << edge_qdiscs(net_->edge(), kEdgeIf);
  // Neighbour discovery the filter dropped is retried by the kernel: allow it a few seconds.
  bool reached = false;
  for (int i = 0; i < 10 && !(reached = reaches(kA6)); ++i) std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(reached);
  ::close(other_prog);
}

}  // namespace
}  // namespace snigate::vmtest
