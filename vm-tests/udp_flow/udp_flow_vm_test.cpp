// The UDP flow kernel path (bpf/udp_flow.bpf.c through UdpFlowForwarder) with real sockets:
// a client, the edge's listener and upstream sockets as snigated's userspace path holds them,
// and an echoing backend. With the flow installed every datagram must arrive intact both ways
// with the addresses userspace forwarding would give it, valid checksums (the receivers check
// them: offload off), none of them reaching the edge's sockets, and the counters must match;
// removing the flow returns the datagrams to the edge's sockets. On lo every checksum is
// CHECKSUM_PARTIAL, trusted by the receiver (lo's offload cannot be turned off), so the veth
// and local-backend shapes are the ones whose receivers check what the program wrote.
//   veth:      client ns -veth0- edge ns -veth1- backend ns (redirected both ways)
//   loopback:  all four sockets on the edge's lo (passed up locally both ways)
//   local:     client across veth0, backend on the edge's lo (to lo and back out veth0)
#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "netns.h"
#include "udp_flow/udp_flow_forwarder.h"
#include "udp_peers.h"

namespace snigate::vmtest {
namespace {

using namespace std::chrono_literals;

enum class Shape { veth, loopback, local_backend };

struct Case {
  Shape shape;
  bool v6;
  bool sender_offload;  // senders hand over CHECKSUM_PARTIAL skbs (the program's other path)
};

std::string name_of(const Case& c) {
  std::string s = c.shape == Shape::veth       ? "Veth"
                  : c.shape == Shape::loopback ? "Loopback"
                                               : "LocalBackend";
  s += c.v6 ? "V6" : "V4";
  s += c.sender_offload ? "PartialChecksums" : "FullChecksums";
  return s;
}
std::string test_name(const ::testing::TestParamInfo<Case>& info) { return name_of(info.param); }
void PrintTo(const Case& c, std::ostream* os) { *os << name_of(c); }

std::uint64_t boottime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + ts.tv_nsec;
}

// Datagram i: 1 to 1400 bytes, its bytes a function of i, so a datagram cut, mixed up or
// delivered to the wrong side differs from the one expected.
std::vector<std::uint8_t> payload(int i) {
  std::vector<std::uint8_t> p(1 + (i * 97) % 1400);
  for (std::size_t j = 0; j < p.size(); ++j) p[j] = static_cast<std::uint8_t>(i * 31 + j * 7);
  return p;
}

class UdpFlowVmTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (auto why = netns_unavailable(); !why.empty())
      GTEST_SKIP() << "SKIPPED LOUDLY: udp flow vm-tests " << why;
    net_.emplace("sg-udp", 8);
    const Case& c = GetParam();
    const Addresses& a = c.v6 ? net_->v6() : net_->v4();
    const std::string loop = c.v6 ? "::1" : "127.0.0.1";
    const std::string edge = net_->edge();
    // Receivers verify checksums (rx off), and whatever leaves the edge gets its checksum
    // finished in software from what the program wrote (tx off on the edge's ends).
    set_checksum_offload(net_->client(), "veth0", false, c.sender_offload);
    set_checksum_offload(net_->backend(), "veth1", false, c.sender_offload);
    set_checksum_offload(edge, "veth0", true, false);
    set_checksum_offload(edge, "veth1", true, false);
    switch (c.shape) {
      case Shape::veth:
        client_ = std::make_unique<UdpSocket>(net_->client(), a.client);
        listener_ = std::make_unique<UdpSocket>(edge, a.edge_front);
        upstream_ = std::make_unique<UdpSocket>(edge, a.edge_back);
        backend_ = std::make_unique<UdpSocket>(net_->backend(), a.backend);
        break;
      case Shape::loopback:
        client_ = std::make_unique<UdpSocket>(edge, loop);
        listener_ = std::make_unique<UdpSocket>(edge, loop);
        upstream_ = std::make_unique<UdpSocket>(edge, loop);
        backend_ = std::make_unique<UdpSocket>(edge, loop);
        break;
      case Shape::local_backend:
        client_ = std::make_unique<UdpSocket>(net_->client(), a.client);
        listener_ = std::make_unique<UdpSocket>(edge, a.edge_front);
        upstream_ = std::make_unique<UdpSocket>(edge, loop);
        backend_ = std::make_unique<UdpSocket>(edge, loop);
        break;
    }
    upstream_->connect_to(backend_->local());
    flow_ = {client_->local(), listener_->local(), upstream_->local(), backend_->local()};
    std::string why;
    in_netns(edge, [&] { fwd_ = udp_flow::UdpFlowForwarder::open({"veth0", "veth1", "lo"}, why); });
    ASSERT_TRUE(fwd_) << why;
  }

  void TearDown() override {
    if (fwd_) in_netns(net_->edge(), [&] { fwd_.reset(); });
    client_.reset();
    listener_.reset();
    upstream_.reset();
    backend_.reset();
    net_.reset();
  }

  void install() {
    std::string why;
    ASSERT_TRUE(fwd_->add(flow_, why)) << why;
  }

  // One datagram client -> listener; expected at the backend from the upstream address,
  // echoed, and back at the client from the listener's address. Each hop within 2 s.
  void echo(int i, std::uint64_t& bytes) {
    const auto p = payload(i);
    ASSERT_TRUE(client_->send_to(p, listener_->local()));
    auto at_backend = backend_->receive(2s);
    ASSERT_TRUE(at_backend) << "datagram " << i << " never reached the backend";
    EXPECT_EQ(at_backend->bytes, p) << "datagram " << i;
    EXPECT_TRUE(same_address(at_backend->from, upstream_->local()))
        << to_string(at_backend->from) << " instead of " << to_string(upstream_->local());
    ASSERT_TRUE(backend_->send_to(at_backend->bytes, at_backend->from));
    auto at_client = client_->receive(2s);
    ASSERT_TRUE(at_client) << "echo " << i << " never reached the client";
    EXPECT_EQ(at_client->bytes, p) << "echo " << i;
    EXPECT_TRUE(same_address(at_client->from, listener_->local()))
        << to_string(at_client->from) << " instead of " << to_string(listener_->local());
    bytes += p.size();
  }

  std::uint64_t checksum_errors() {
    return udp_checksum_errors(net_->client()) + udp_checksum_errors(net_->backend()) +
           udp_checksum_errors(net_->edge());
  }

  std::optional<Topology> net_;
  std::unique_ptr<UdpSocket> client_, listener_, upstream_, backend_;
  udp_flow::UdpFlowSpec flow_;
  std::unique_ptr<udp_flow::UdpFlowForwarder> fwd_;
};

TEST_P(UdpFlowVmTest, KernelMovesEveryDatagramBothWaysAndTheEdgeSocketsSeeNone) {
  const std::uint64_t errors_before = checksum_errors();
  const std::uint64_t start = boottime_ns();
  install();
  constexpr int kDatagrams = 64;
  std::uint64_t bytes = 0;
  for (int i = 0; i < kDatagrams; ++i) {
    echo(i, bytes);
    if (HasFatalFailure()) return;
  }
  EXPECT_EQ(listener_->drain(), 0u) << "the edge's listener socket got flow datagrams";
  EXPECT_EQ(upstream_->drain(), 0u) << "the edge's upstream socket got flow datagrams";
  EXPECT_EQ(checksum_errors(), errors_before);

  auto counters = fwd_->counters(flow_);
  ASSERT_TRUE(counters);
  EXPECT_EQ(counters->packets_in, static_cast<std::uint64_t>(kDatagrams));
  EXPECT_EQ(counters->packets_out, static_cast<std::uint64_t>(kDatagrams));
  EXPECT_EQ(counters->bytes_in, bytes);
  EXPECT_EQ(counters->bytes_out, bytes);
  EXPECT_GE(counters->last_seen_ns, start);
  EXPECT_LE(counters->last_seen_ns, boottime_ns());

  // Removed: the client's next datagram is the listener socket's again, as is the backend's.
  fwd_->remove(flow_);
  EXPECT_FALSE(fwd_->counters(flow_));
  const auto p = payload(kDatagrams);
  ASSERT_TRUE(client_->send_to(p, listener_->local()));
  auto at_listener = listener_->receive(2s);
  ASSERT_TRUE(at_listener) << "with the flow removed the datagram must reach the listener";
  EXPECT_EQ(at_listener->bytes, p);
  EXPECT_TRUE(same_address(at_listener->from, client_->local()));
  ASSERT_TRUE(backend_->send_to(p, upstream_->local()));
  auto at_upstream = upstream_->receive(2s);
  ASSERT_TRUE(at_upstream) << "with the flow removed the reply must reach the upstream socket";
  EXPECT_EQ(at_upstream->bytes, p);
  EXPECT_EQ(client_->drain(), 0u);
}

// Other datagrams to the listener (another client port) still reach userspace while the flow
// is installed: only the flow's own addresses are taken. Two shapes are enough: the lookup
// is the same for all.
class UdpFlowOthersTest : public UdpFlowVmTest {};

TEST_P(UdpFlowOthersTest, OtherClientsStillReachTheListener) {
  install();
  const Case& c = GetParam();
  const std::string ns = c.shape == Shape::loopback ? net_->edge() : net_->client();
  UdpSocket other(ns, c.shape == Shape::loopback ? (c.v6 ? "::1" : "127.0.0.1")
                                                 : (c.v6 ? net_->v6().client : net_->v4().client));
  const auto p = payload(7);
  ASSERT_TRUE(other.send_to(p, listener_->local()));
  auto got = listener_->receive(2s);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->bytes, p);
  EXPECT_TRUE(same_address(got->from, other.local()));
  EXPECT_EQ(backend_->drain(), 0u);
  EXPECT_EQ(fwd_->counters(flow_)->packets_in, 0u);
}

// QUIC servers send with UDP GSO (UDP_SEGMENT): a batch of datagrams in one send, which may
// cross veth and lo as one skb behind one UDP header and be split only at the receiving
// socket. Each datagram must arrive intact and count as one.
class UdpFlowGsoTest : public UdpFlowVmTest {};

TEST_P(UdpFlowGsoTest, AGsoBatchArrivesAsItsDatagramsAndCountsAsThem) {
  install();
  constexpr std::uint16_t kSegment = 1000;
  constexpr int kSegments = 10;
  std::vector<std::uint8_t> batch;
  for (int i = 0; i < kSegments; ++i) {
    auto p = payload(i);
    p.resize(kSegment, static_cast<std::uint8_t>(i));
    batch.insert(batch.end(), p.begin(), p.end());
  }
  ASSERT_TRUE(client_->send_gso(batch, kSegment, listener_->local()));
  for (int i = 0; i < kSegments; ++i) {
    auto got = backend_->receive(2s);
    ASSERT_TRUE(got) << "datagram " << i << " of the batch never reached the backend";
    EXPECT_TRUE(std::equal(got->bytes.begin(), got->bytes.end(), batch.begin() + i * kSegment) &&
                got->bytes.size() == kSegment)
        << "datagram " << i << " of the batch, " << got->bytes.size() << " bytes";
    EXPECT_TRUE(same_address(got->from, upstream_->local()));
  }
  EXPECT_EQ(listener_->drain(), 0u);
  auto counters = fwd_->counters(flow_);
  ASSERT_TRUE(counters);
  EXPECT_EQ(counters->packets_in, static_cast<std::uint64_t>(kSegments));
  EXPECT_EQ(counters->bytes_in, batch.size());
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, UdpFlowVmTest,
    ::testing::Values(Case{Shape::veth, false, false}, Case{Shape::veth, true, false},
                      Case{Shape::veth, false, true}, Case{Shape::veth, true, true},
                      Case{Shape::loopback, false, true}, Case{Shape::loopback, true, true},
                      Case{Shape::local_backend, false, false},
                      Case{Shape::local_backend, true, true}),
    test_name);
// Checksum offload on, so the batch crosses veth and lo as one skb. (With it off 6.18 splits
// the batch before it leaves the client, and 6.1 refuses UDP_SEGMENT with EIO.)
INSTANTIATE_TEST_SUITE_P(Shapes, UdpFlowGsoTest,
                         ::testing::Values(Case{Shape::veth, false, true},
                                           Case{Shape::veth, true, true},
                                           Case{Shape::loopback, false, true}),
                         test_name);
INSTANTIATE_TEST_SUITE_P(Shapes, UdpFlowOthersTest,
                         ::testing::Values(Case{Shape::veth, false, false},
                                           Case{Shape::loopback, true, true}),
                         test_name);

// A flow whose client and backend differ in family cannot be rewritten in place: refused
// with the reason, for userspace to forward.
TEST(UdpFlowSpecTest, MixedFamiliesAreRefusedWithAReason) {
  if (auto why = netns_unavailable(); !why.empty()) GTEST_SKIP() << "SKIPPED LOUDLY: " << why;
  Topology net("sg-udp", 8);
  std::unique_ptr<udp_flow::UdpFlowForwarder> fwd;
  std::string why;
  in_netns(net.edge(), [&] { fwd = udp_flow::UdpFlowForwarder::open({"veth0"}, why); });
  ASSERT_TRUE(fwd) << why;
  udp_flow::UdpFlowSpec flow{udp_address("fd00:8:1::1", 5000), udp_address("fd00:8:1::2", 443),
                             udp_address("10.8.2.1", 6000), udp_address("10.8.2.2", 443)};
  EXPECT_FALSE(fwd->add(flow, why));
  EXPECT_NE(why.find("address family"), std::string::npos) << why;
  flow.client = udp_address("10.8.1.1", 5000);
  flow.listener = udp_address("0.0.0.0", 443);
  EXPECT_FALSE(fwd->add(flow, why));
  EXPECT_NE(why.find("wildcard"), std::string::npos) << why;
  in_netns(net.edge(), [&] { fwd.reset(); });
}

}  // namespace
}  // namespace snigate::vmtest
