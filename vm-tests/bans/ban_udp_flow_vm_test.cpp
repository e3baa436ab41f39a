// Bans enforced at TC ingress (someone else's XDP program holds the interface) and the UDP
// flow filter on the same hook: the ban filter runs first (priority 1) and must hand what it
// passes on to the flow filter (priority 2), which TC_ACT_OK would not do; a banned client's
// datagrams of an installed flow are still dropped.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include "udp_flow/udp_flow_forwarder.h"
#include "udp_peers.h"
#include "vm_support.h"

namespace snigate::vmtest {
namespace {

using namespace std::chrono_literals;

int passing_xdp_program() {
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, XDP_PASS},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  return bpf_prog_load(BPF_PROG_TYPE_XDP, "other_xdp", "GPL", insns, 2, nullptr);
}

TEST_F(BanVmTest, TcBansRunBeforeTheUdpFlowFilterAndLetItForward) {
  int other = passing_xdp_program();
  ASSERT_GE(other, 0);
  int attached = -1;
  in_netns(net_->edge(), [&] {
    attached = bpf_xdp_attach(static_cast<int>(if_nametoindex(kEdgeIf)), other,
                              XDP_FLAGS_DRV_MODE, nullptr);
  });
  ASSERT_EQ(attached, 0);
  open_manager();
  ASSERT_EQ(enforcement()[0], std::string(kEdgeIf) + ": tc ingress");

  std::unique_ptr<udp_flow::UdpFlowForwarder> fwd;
  std::string why;
  in_netns(net_->edge(), [&] { fwd = udp_flow::UdpFlowForwarder::open({kEdgeIf, "veth1"}, why); });
  ASSERT_TRUE(fwd) << why;
  UdpSocket listener(net_->edge(), net_->v4().edge_front);
  UdpSocket backend(net_->backend(), net_->v4().backend);
  for (const char* source : {kB, kA}) {  // kA: a flow installed before its client was banned
    UdpSocket client(net_->client(), source);
    UdpSocket upstream(net_->edge(), net_->v4().edge_back);
    upstream.connect_to(backend.local());
    udp_flow::UdpFlowSpec flow{client.local(), listener.local(), upstream.local(), backend.local()};
    ASSERT_TRUE(fwd->add(flow, why)) << why;
    if (source == kA) {
      ASSERT_TRUE(ban(kA).ok);
    }
    ASSERT_TRUE(client.send_to({'q'}, listener.local()));
    if (source == kB) {
      auto got = backend.receive(2s);
      ASSERT_TRUE(got) << "the flow filter never saw what the ban filter passed";
      EXPECT_TRUE(same_address(got->from, upstream.local())) << to_string(got->from);
      EXPECT_EQ(fwd->counters(flow)->packets_in, 1u);
    } else {
      // An unbanned datagram after it on the same link: once it is in, the banned one would
      // have been too.
      UdpSocket marker(net_->client(), kB);
      ASSERT_TRUE(marker.send_to({'m'}, listener.local()));
      auto got = listener.receive(2s);
      ASSERT_TRUE(got);
      EXPECT_TRUE(same_address(got->from, marker.local())) << to_string(got->from);
      EXPECT_EQ(backend.drain(), 0u) << "a banned client's datagram was forwarded";
      EXPECT_EQ(fwd->counters(flow)->packets_in, 0u);
      EXPECT_GE(drops_of(kA), 1u);
    }
    EXPECT_EQ(listener.drain(), 0u);
    fwd->remove(flow);
  }
  in_netns(net_->edge(), [&] { fwd.reset(); });
  close_manager();
  ::close(other);
}

}  // namespace
}  // namespace snigate::vmtest
