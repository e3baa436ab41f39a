// The ban program's verdict on hand-built frames, through its XDP and its TC entry: a banned
// source is dropped behind no tag, an 802.1Q tag or 802.1ad QinQ, over IPv4 and IPv6, and
// counted on its ban and in the totals; every other frame passes: other sources, frames cut
// short before the source address, frames that are not IP.
#include "verdict_support.h"

namespace snigate::vmtest {
namespace {

// The encapsulations the program parses (at most two tags, as QinQ has).
struct Encapsulation {
  const char* name;
  std::vector<std::uint16_t> tpids;
};
const Encapsulation kEncapsulations[] = {
    {"untagged", {}},
    {"802.1Q", {ETH_P_8021Q}},
    {"QinQ 802.1ad+802.1Q", {ETH_P_8021AD, ETH_P_8021Q}},
    {"double 802.1Q", {ETH_P_8021Q, ETH_P_8021Q}},
};

Frame syn_from(const char* source, const Encapsulation& e) {
  Frame f;
  std::uint16_t vlan_id = 100;
  for (auto tpid : e.tpids) f.tag(tpid, vlan_id++);
  return f.from(addr(source));
}

TEST_P(BanVerdictTest, DropsBannedSourcesAndCountsThem) {
  ban("10.5.1.10");
  ban("fd00:5:1::a");
  ban("10.5.3.0/24");
  ban("fd00:5:3::/48");
  const auto before = map_->totals();
  std::uint64_t runs = 0;
  for (const auto& e : kEncapsulations) {
    SCOPED_TRACE(e.name);
    for (const char* banned : {"10.5.1.10", "fd00:5:1::a", "10.5.3.77", "fd00:5:3:ff::1"}) {
      EXPECT_TRUE(drops(syn_from(banned, e))) << banned;
    }
    // Neighbours that differ in the last bit, or just outside a prefix.
    for (const char* other : {"10.5.1.11", "fd00:5:1::b", "10.5.4.77", "10.5.2.255",
                              "fd00:5:4::1", "fd00:5:2:ffff::1", "10.5.1.2"}) {
      EXPECT_FALSE(drops(syn_from(other, e))) << other;
    }
    runs += 11;
  }
  const auto n = std::size(kEncapsulations);
  for (const char* b : {"10.5.1.10", "fd00:5:1::a", "10.5.3.0/24", "fd00:5:3::/48"})
    EXPECT_EQ(drops_of(b), n) << b;
  const auto after = map_->totals();
  EXPECT_EQ(after.packets - before.packets, runs);
  EXPECT_EQ(after.dropped_v4 - before.dropped_v4, 2 * n);
  EXPECT_EQ(after.dropped_v6 - before.dropped_v6, 2 * n);
  EXPECT_EQ(after.expired_hits - before.expired_hits, 0u);
}

// Cut at every length from a bare Ethernet header (the least BPF_PROG_TEST_RUN accepts) to the
// whole frame: the program must not read past the end, so it passes every cut before the
// source address is whole and drops from there on.
TEST_P(BanVerdictTest, TruncatedFramesPassUntilTheSourceIsWhole) {
  ban("10.5.1.10");
  ban("fd00:5:1::a");
  std::uint64_t expected_drops = 0;
  for (const auto& e : kEncapsulations) {
    for (const char* banned : {"10.5.1.10", "fd00:5:1::a"}) {
      SCOPED_TRACE(std::string(e.name) + " " + banned);
      const auto frame = syn_from(banned, e);
      const auto whole = frame.bytes();
      for (std::size_t length = ETH_HLEN; length <= whole.size(); ++length) {
        const std::vector<std::uint8_t> cut(whole.begin(), whole.begin() + length);
        const auto dropped = verdict(cut);
        if (!dropped) {
          // The kernel (6.18) will not build an sk_buff whose EtherType says IP around less
          // than an IP header; the XDP case runs the same parser on those cuts.
          EXPECT_TRUE(GetParam().skb && e.tpids.empty() && length < frame.ip_header_end())
              << "BPF_PROG_TEST_RUN refused a cut at " << length << " bytes";
          continue;
        }
        EXPECT_EQ(*dropped, length >= frame.ip_header_end()) << length << " bytes";
        expected_drops += *dropped;
      }
    }
  }
  EXPECT_EQ(drops_of("10.5.1.10") + drops_of("fd00:5:1::a"), expected_drops);
}

// With every IP source banned, frames that are not IP still pass: ARP, LLDP and an unknown
// EtherType, each carrying an address where an IPv4 source would sit, untagged and tagged;
// and a third VLAN tag, which the program does not parse (MAX_VLAN_TAGS in ban.bpf.c).
TEST_P(BanVerdictTest, PassesFramesThatAreNotIp) {
  ban("0.0.0.0/0");
  ban("::/0");
  ASSERT_TRUE(drops(Frame().from(addr("10.5.1.10"))));
  const auto before = map_->totals();
  std::vector<std::uint8_t> payload(40, 0);
  const auto source = addr("10.5.1.10").to_v4().to_bytes();
  std::copy(source.begin(), source.end(), payload.begin() + 12);
  for (std::uint16_t type : {std::uint16_t{ETH_P_ARP}, std::uint16_t{0x88cc}, std::uint16_t{0x1234}}) {
    EXPECT_FALSE(drops(Frame().ethertype(type, payload))) << std::hex << type;
    EXPECT_FALSE(drops(Frame().tag(ETH_P_8021Q, 5).ethertype(type, payload))) << std::hex << type;
  }
  EXPECT_FALSE(drops(Frame()
                         .tag(ETH_P_8021AD, 1)
                         .tag(ETH_P_8021Q, 2)
                         .tag(ETH_P_8021Q, 3)
                         .from(addr("10.5.1.10"))));
  const auto after = map_->totals();
  EXPECT_EQ(after.packets - before.packets, 7u);
  EXPECT_EQ(after.dropped_v4 - before.dropped_v4, 0u);
  EXPECT_EQ(after.dropped_v6 - before.dropped_v6, 0u);
}

// An expired ban neither drops nor hides the live, shorter ban under it; the packet is
// counted on the ban that dropped it.
TEST_P(BanVerdictTest, LooksPastExpiredBansToTheLiveOneUnderThem) {
  const auto now = bans::SystemBanClock().boot_ns();
  const std::uint64_t past = now - 1, future = now + 3'600'000'000'000ull;
  ban("10.5.0.0/16");
  ban("10.5.2.0/24", past);
  ban("10.5.2.7", future);
  ban("fd00:5::/32", past);
  ban("fd00:5:2::/48", past);
  const auto before = map_->totals();
  EXPECT_TRUE(drops(Frame().from(addr("10.5.2.7"))));
  EXPECT_TRUE(drops(Frame().from(addr("10.5.2.8"))));
  EXPECT_FALSE(drops(Frame().from(addr("fd00:5:2::1"))));
  EXPECT_FALSE(drops(Frame().from(addr("10.6.0.1"))));
  EXPECT_EQ(drops_of("10.5.2.7"), 1u);
  EXPECT_EQ(drops_of("10.5.0.0/16"), 1u);
  EXPECT_EQ(drops_of("10.5.2.0/24"), 0u);
  const auto after = map_->totals();
  EXPECT_EQ(after.expired_hits - before.expired_hits, 3u);  // 10.5.2.0/24, fd00:5:2::/48, fd00:5::/32
}

INSTANTIATE_TEST_SUITE_P(Hooks, BanVerdictTest, ::testing::Values(kXdp, kTc), hook_name);

}  // namespace
}  // namespace snigate::vmtest
