// Relay behaviour between real TCP peers in network namespaces, for each relay mode: bytes
// intact both ways, FIN and RST passed on per direction, slow and stalled readers, aborts,
// and nothing left behind (map entries, file descriptors) afterwards.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <bpf/bpf.h>

#include "kernel/relay_choice.h"
#include "relay/copy_relay.h"
#include "relay/splice_relay.h"
#include "relay_harness.h"
#include "relay/pipe_pool.h"
#include "relay_sockmap/sockmap_relay.h"

namespace snigate::vmtest {
namespace {

using relay::End;
using relay::Mode;
using namespace std::chrono_literals;

constexpr std::uint64_t MiB = 1 << 20;

// Whether this kernel has sockhash maps at all: the one reason to skip sockmap cases.
bool kernel_has_sockhash() {
  int fd = bpf_map_create(BPF_MAP_TYPE_SOCKHASH, nullptr, 8, 4, 1, nullptr);
  if (fd < 0) return errno != EINVAL && errno != EOPNOTSUPP;
  ::close(fd);
  return true;
}

// TCP's loss and window counters of namespace `ns` (what `nstat` reads), for the figures the
// long-stream tests print: a relay that holds bytes against a receive buffer shows there.
std::string tcp_counters(const std::string& ns) {
  static const std::set<std::string> wanted{"RetransSegs", "TCPLostRetransmit", "PruneCalled",
                                            "RcvPruned", "OfoPruned", "TCPWantZeroWindowAdv",
                                            "TCPToZeroWindowAdv", "TCPZeroWindowDrop",
                                            "TCPRcvQDrop", "TCPOFOQueue"};
  std::string text;
  in_netns(ns, [&] {
    for (const char* file : {"/proc/thread-self/net/snmp", "/proc/thread-self/net/netstat"}) {
      std::ifstream in(file);
      for (std::string names, values; std::getline(in, names) && std::getline(in, values);) {
        std::istringstream n(names), v(values);
        std::string name, value;
        n >> name;
        v >> value;
        while (n >> name && v >> value)
          if (wanted.contains(name)) text += " " + name + "=" + value;
      }
    }
  });
  return text;
}

class RelayVm : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    if (auto why = netns_unavailable(); !why.empty()) GTEST_SKIP() << "SKIPPED: " << why;
    switch (GetParam()) {
      case Mode::Sockmap: {
        if (!kernel_has_sockhash()) GTEST_SKIP() << "SKIPPED: this kernel has no sockhash maps";
        std::string why;
        sockmap_ = relay::SockmapRelay::create(std::make_shared<relay::SpliceRelay>(), &why);
        ASSERT_TRUE(sockmap_) << "sockmap relay did not load on this kernel: " << why;
        relay_ = sockmap_;
        break;
      }
      case Mode::Auto: {
        // The daemon's own choice: copy splicing bulk, over the kernel for connections that
        // prove interactive.
        if (!kernel_has_sockhash()) GTEST_SKIP() << "SKIPPED: this kernel has no sockhash maps";
        auto choice = kernel::choose_relay(
            Mode::Auto, {.queue_limit = SNIGATE_RELAY_QUEUE_LIMIT_DEFAULT}, kernel::probe_kernel());
        sockmap_ = std::dynamic_pointer_cast<relay::SockmapRelay>(choice.relay);
        ASSERT_TRUE(sockmap_) << "auto has no kernel path on this kernel: " << choice.reason;
        relay_ = sockmap_;
        break;
      }
      case Mode::Splice: relay_ = std::make_shared<relay::SpliceRelay>(); break;
      default: relay_ = std::make_shared<relay::CopyRelay>(); break;
    }
  }

  Harness& harness(relay::Options options = {}, Link link = Link::Veth) {
    if (!harness_) harness_ = std::make_unique<Harness>(relay_, options, link);
    return *harness_;
  }

  // Every byte arrived, in order, followed by a clean EOF, on both ends; the edge saw a clean
  // end for each connection and counted what the peers sent.
  void expect_intact(const std::vector<Plan>& plans, const std::vector<Outcome>& out,
                     std::size_t first_record = 0) {
    ASSERT_FALSE(harness_->timed_out());
    std::uint64_t c2u = 0, u2c = 0;
    for (std::size_t i = 0; i < plans.size(); ++i) {
      SCOPED_TRACE("connection " + std::to_string(i));
      const auto& p = plans[i];
      const auto& o = out[i];
      EXPECT_TRUE(o.client_done && o.backend_done);
      EXPECT_EQ(o.backend_received, p.c2u);
      EXPECT_EQ(o.client_received, p.u2c);
      EXPECT_TRUE(o.backend_intact && o.client_intact);
      EXPECT_TRUE(o.backend_eof && o.client_eof)
          << o.backend_error.message() << " / " << o.client_error.message();
      c2u += p.c2u + 8;  // the id header
      u2c += p.u2c;
    }
    auto all = harness_->edge_records();
    const std::vector<EdgeRecord> records(all.begin() + std::min(first_record, all.size()), all.end());
    ASSERT_EQ(records.size(), plans.size());
    std::uint64_t counted_c2u = 0, counted_u2c = 0;
    for (const auto& r : records) {
      EXPECT_EQ(r.result.end, End::Clean) << relay::to_string(r.result.end) << " " << r.result.detail;
      counted_c2u += r.c2u;
      counted_u2c += r.u2c;
    }
    EXPECT_EQ(counted_c2u, c2u);
    EXPECT_EQ(counted_u2c, u2c);
  }

  // Full speed both ways at once for long, the traffic that made the first sockmap relay send
  // whole ~64 KiB chunks twice (issue 12): an echo backend, one connection over IPv4, one
  // over IPv6, then eight at once, each of SNIGATE_LONG_STREAM_MIB (1 GiB by default) each
  // way, every byte checked, and every connection moved by the relay under test: a sockmap
  // case that silently ran on its fallback would prove nothing about the kernel path. Under
  // auto, streams both ways at once take pipes: each connection must end on splice, or on
  // the kernel's relay when its reads came a segment at a time (the small-reads proof), never
  // on copy alone.
  void long_two_way_streams(Harness& h) {
    const char* env = std::getenv("SNIGATE_LONG_STREAM_MIB");
    const std::uint64_t bytes = (env ? std::strtoull(env, nullptr, 10) : 1024) * MiB;
    const Plan echo{.c2u = bytes, .u2c = bytes, .backend_echoes = true};
    Plan echo6 = echo;
    echo6.v6 = true;
    std::vector<std::vector<Plan>> rounds{{echo}, {echo6}, std::vector<Plan>(8, echo)};
    for (std::size_t i = 0; i < rounds[2].size(); ++i) rounds[2][i].v6 = i % 2 == 1;
    for (std::size_t round = 0; round < rounds.size(); ++round) {
      SCOPED_TRACE("round " + std::to_string(round));
      const auto& plans = rounds[round];
      const auto first = h.edge_records().size();
      const auto start = std::chrono::steady_clock::now();
      auto out = h.run(plans, plans.size(), 240s);
      std::printf("%s: %zu connection(s) of %llu MiB each way in %.1f s\n",
                  relay::to_string(GetParam()), plans.size(),
                  static_cast<unsigned long long>(bytes / MiB),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      for (std::size_t i = 0; i < out.size(); ++i)
        EXPECT_TRUE(out[i].backend_intact && out[i].client_intact)
            << "connection " << i << ": first bad byte at " << out[i].backend_first_bad
            << " to the backend, at " << out[i].client_first_bad << " to the client";
      expect_intact(plans, out, first);
      auto records = h.edge_records();
      for (std::size_t i = first; i < records.size(); ++i) {
        if (GetParam() == Mode::Auto)
          EXPECT_TRUE(records[i].mode == Mode::Splice || records[i].mode == Mode::Sockmap)
              << "moved by " << relay::to_string(records[i].mode);
        else
          EXPECT_EQ(records[i].mode, GetParam()) << "moved by " << relay::to_string(records[i].mode);
      }
    }
    std::printf("%s, edge namespace:%s\n", relay::to_string(GetParam()),
                tcp_counters(h.topology().edge()).c_str());
    if (sockmap_) {
      const auto& k = sockmap_->kernel();
      std::printf("repeated bytes the verdict cut so far: %llu; pauses %llu, iterator runs "
                  "%llu taking %.1f us each on average\n",
                  static_cast<unsigned long long>(sockmap_->repeated_bytes()),
                  static_cast<unsigned long long>(k.detaches()),
                  static_cast<unsigned long long>(k.detach_runs()),
                  k.detach_runs() ? k.detach_run_ns() / 1e3 / k.detach_runs() : 0.0);
      // Two full-speed streams through an echo outrun the peer's psock: the pause must have
      // been taken (and ended) for the case to prove it.
      if (GetParam() == Mode::Sockmap) {
        EXPECT_GT(k.detaches(), 0u);
      }
    }
  }

  void expect_no_leftovers() {
    EXPECT_EQ(harness_->live_connections(), 0u);
    if (sockmap_) {
      EXPECT_EQ(sockmap_->sockhash_entries(), 0u);
      EXPECT_EQ(sockmap_->index_entries(), 0u);
    }
  }

  std::shared_ptr<relay::Relay> relay_;
  std::shared_ptr<relay::SockmapRelay> sockmap_;
  std::unique_ptr<Harness> harness_;
};

TEST_P(RelayVm, TwoHundredConcurrentRandomSizesBothWays) {
  // Sizes log-uniform over 0 B .. 64 MiB (so small and large both occur, ~1.5 GiB in all),
  // plus the extremes; odd connections over IPv6.
  std::mt19937_64 rng(20261123);
  std::uniform_real_distribution<double> exponent(0, std::log2(64.0 * MiB));
  auto size = [&] { return static_cast<std::uint64_t>(std::exp2(exponent(rng))) - 1; };
  std::vector<Plan> plans(200);
  for (std::size_t i = 0; i < plans.size(); ++i) {
    plans[i].c2u = size();
    plans[i].u2c = size();
    plans[i].v6 = i % 2;
  }
  plans[0].c2u = plans[1].u2c = 0;
  plans[2].c2u = plans[3].u2c = 64 * MiB;
  auto out = harness().run(plans, plans.size(), 300s);
  expect_intact(plans, out);
  expect_no_leftovers();
}

// Splice with a bound on its pipes ([daemon] max_pipes) far below what its connections want.
class RelayVmFewPipes : public RelayVm {
 protected:
  void TearDown() override { relay::set_max_pipes(relay::kUnboundedPipes); }
};

// Bursts short of a pipe go by copy: every byte still arrives once and in order, both ways,
// and the pool is back within the bound once they are done.
TEST_P(RelayVmFewPipes, SixtyFourConnectionsShareFourPipes) {
  relay::set_max_pipes(4);
  const std::uint64_t copied_before = relay::pipe_figures().bursts_by_copy;
  std::mt19937_64 rng(17);
  std::uniform_int_distribution<std::uint64_t> size(0, 2 * MiB);
  std::vector<Plan> plans(64);
  for (std::size_t i = 0; i < plans.size(); ++i)
    plans[i] = {.c2u = size(rng), .u2c = size(rng), .v6 = i % 2 == 1};
  auto out = harness().run(plans, plans.size(), 120s);
  expect_intact(plans, out);
  expect_no_leftovers();
  const auto pipes = relay::pipe_figures();
  EXPECT_GT(pipes.bursts_by_copy, copied_before) << "no burst went short of a pipe";
  EXPECT_LE(pipes.open, 4u);
}

TEST_P(RelayVm, ClientHalfClosesBackendKeepsSending) {
  std::vector<Plan> plans(4);
  for (std::size_t i = 0; i < plans.size(); ++i)
    plans[i] = {.c2u = 8 * MiB, .u2c = 24 * MiB, .v6 = i % 2 == 1, .backend_waits_for_eof = true};
  auto out = harness().run(plans, plans.size(), 120s);
  expect_intact(plans, out);
  expect_no_leftovers();
}

TEST_P(RelayVm, BackendHalfClosesClientKeepsSending) {
  std::vector<Plan> plans(4);
  for (std::size_t i = 0; i < plans.size(); ++i)
    plans[i] = {.c2u = 24 * MiB, .u2c = 8 * MiB, .v6 = i % 2 == 1, .client_waits_for_eof = true};
  auto out = harness().run(plans, plans.size(), 120s);
  expect_intact(plans, out);
  expect_no_leftovers();
}

TEST_P(RelayVm, ClientResetReachesBackendAsReset) {
  std::vector<Plan> plans(2);
  for (std::size_t i = 0; i < plans.size(); ++i)
    plans[i] = {.c2u = 4 * MiB, .u2c = 256 * MiB, .v6 = i % 2 == 1, .client_end = Plan::End::Reset};
  auto out = harness().run(plans, plans.size(), 60s);
  ASSERT_FALSE(harness_->timed_out());
  for (const auto& o : out) {
    EXPECT_TRUE(o.backend_intact);
    EXPECT_LE(o.backend_received, 4 * MiB);
    // The reset is reported once, to whichever of its reader and writer asks first; a
    // writer that asks after the reader has taken it gets EPIPE (the connection is gone).
    EXPECT_TRUE(o.backend_error == boost::asio::error::connection_reset ||
                o.backend_send_error == boost::asio::error::connection_reset ||
                o.backend_send_error == boost::asio::error::broken_pipe)
        << o.backend_error.message() << " / " << o.backend_send_error.message();
  }
  for (const auto& r : harness_->edge_records()) EXPECT_EQ(r.result.end, End::ClientReset);
  expect_no_leftovers();
}

TEST_P(RelayVm, BackendResetReachesClientAsReset) {
  std::vector<Plan> plans(2);
  for (std::size_t i = 0; i < plans.size(); ++i)
    plans[i] = {.c2u = 256 * MiB, .u2c = 4 * MiB, .v6 = i % 2 == 1, .backend_end = Plan::End::Reset};
  auto out = harness().run(plans, plans.size(), 120s);
  ASSERT_FALSE(harness_->timed_out());
  for (const auto& o : out) {
    EXPECT_TRUE(o.client_intact);
    EXPECT_LE(o.client_received, 4 * MiB);
    EXPECT_TRUE(o.client_error == boost::asio::error::connection_reset ||
                o.client_send_error == boost::asio::error::connection_reset ||
                o.client_send_error == boost::asio::error::broken_pipe)
        << o.client_error.message() << " / " << o.client_send_error.message();
  }
  for (const auto& r : harness_->edge_records()) EXPECT_EQ(r.result.end, End::UpstreamReset);
  expect_no_leftovers();
}

TEST_P(RelayVm, ClientReadingAtOneMiBPerSecond) {
  std::vector<Plan> plans{{.c2u = 2 * MiB, .u2c = 3 * MiB, .client_read_rate = MiB}};
  const auto start = std::chrono::steady_clock::now();
  auto out = harness().run(plans, 1, 60s);
  const auto took = std::chrono::steady_clock::now() - start;
  expect_intact(plans, out);
  EXPECT_GE(took, 2500ms);  // the reader's pace, not the relay's, set the duration
  expect_no_leftovers();
}

TEST_P(RelayVm, LongTwoWayStreamsOverVeth) {
  long_two_way_streams(harness());
  expect_no_leftovers();
}

TEST_P(RelayVm, LongTwoWayStreamsOverLoopback) {
  long_two_way_streams(harness({}, Link::Loopback));
  expect_no_leftovers();
}

// auto's relay under the same long streams, over both links (its other cases are splice's and
// copy's, above).
class RelayVmAuto : public RelayVm {};

TEST_P(RelayVmAuto, LongTwoWayStreamsOverVeth) {
  long_two_way_streams(harness());
  expect_no_leftovers();
}

TEST_P(RelayVmAuto, LongTwoWayStreamsOverLoopback) {
  long_two_way_streams(harness({}, Link::Loopback));
  expect_no_leftovers();
}

// A lossy link: the edge drops 1 in 200 TCP segments it receives (nftables), so TCP
// retransmits, and a retransmission or a queued out-of-order segment may overlap bytes that
// already arrived. The kernel hands such an skb to the stream verdict whole, head and all
// (README, "A kernel behaviour"); the sockmap relay must cut the repeated head, and every
// relay must deliver each byte once.
TEST_P(RelayVm, LossyLinkDeliversEachByteOnce) {
  auto& h = harness();
  run("ip netns exec " + h.topology().edge() +
      " nft add table inet sg_loss '{ chain in { type filter hook input priority 0; "
      "meta l4proto tcp numgen random mod 200 0 drop; }; }'");
  std::vector<Plan> plans(4);
  for (std::size_t i = 0; i < plans.size(); ++i)
    plans[i] = {.c2u = 128 * MiB, .u2c = 128 * MiB, .v6 = i % 2 == 1};
  auto out = h.run(plans, plans.size(), 180s);
  expect_intact(plans, out);
  for (const auto& r : h.edge_records()) EXPECT_EQ(r.mode, GetParam()) << relay::to_string(r.mode);
  std::printf("%s, edge namespace:%s\n", relay::to_string(GetParam()),
              tcp_counters(h.topology().edge()).c_str());
  if (sockmap_) {
    std::printf("repeated bytes the verdict cut: %llu\n",
                static_cast<unsigned long long>(sockmap_->repeated_bytes()));
    RecordProperty("repeated_bytes", std::to_string(sockmap_->repeated_bytes()));
  }
  expect_no_leftovers();
}

// The machine's memory: TCP's charged pages (/proc/net/sockstat "mem", the same for every
// namespace), the slab (skb heads) and all memory in use (MemTotal - MemAvailable), which is
// the only one of the three that sees skb data queued outside any socket's accounting.
struct KernelMemory {
  double tcp_mib = 0, slab_mib = 0, used_mib = 0;
};

KernelMemory kernel_memory() {
  KernelMemory m;
  std::ifstream sockstat("/proc/net/sockstat");
  for (std::string word; sockstat >> word;)
    if (word == "mem") {
      long pages = 0;
      sockstat >> pages;
      m.tcp_mib = pages * double(::sysconf(_SC_PAGESIZE)) / MiB;
      break;
    }
  std::ifstream meminfo("/proc/meminfo");
  double total = 0, available = 0;
  for (std::string word; meminfo >> word;) {
    double* field = word == "Slab:" ? &m.slab_mib
                    : word == "MemTotal:" ? &total
                    : word == "MemAvailable:" ? &available
                    : nullptr;
    if (!field) continue;
    long kib = 0;
    meminfo >> kib;
    *field = kib / 1024.0;
  }
  m.used_mib = total - available;
  return m;
}

// A backend that never reads while the client pushes 1 GiB for 10 s: what the client got rid
// of is what the edge and the kernel hold for it (socket queues, the psock's redirect queue).
// Bounded means the client stalls.
struct StallCost {
  double client_mib = 0;  // what the client's socket accepted
  KernelMemory grew;      // kernel memory taken, sampled while the stall lasts
};

StallCost stalled_reader(Harness& h) {
  std::vector<Plan> plans{stalled_upload(1024 * MiB)};
  const KernelMemory before = kernel_memory();
  auto running = std::async(std::launch::async, [&] { return h.run(plans, 1, 10s); });
  std::this_thread::sleep_for(9s);
  const KernelMemory during = kernel_memory();
  auto out = running.get();
  StallCost cost{out[0].client_sent / double(MiB),
                 {during.tcp_mib - before.tcp_mib, during.slab_mib - before.slab_mib,
                  during.used_mib - before.used_mib}};
  std::printf("backend never reads, 1 GiB pushed for 10 s: client got rid of %.1f MiB; "
              "machine: TCP memory %+.1f MiB, slab %+.1f MiB, memory in use %+.1f MiB\n",
              cost.client_mib, cost.grew.tcp_mib, cost.grew.slab_mib, cost.grew.used_mib);
  return cost;
}

TEST_P(RelayVm, BackendNeverReadsMemoryBounded) {
  auto cost = stalled_reader(harness());
  EXPECT_TRUE(harness_->timed_out());  // the client could not finish
  RecordProperty("client_mib_accepted", std::to_string(cost.client_mib));
  RecordProperty("kernel_tcp_mib", std::to_string(cost.grew.tcp_mib));
  RecordProperty("kernel_slab_mib", std::to_string(cost.grew.slab_mib));
  RecordProperty("machine_used_mib", std::to_string(cost.grew.used_mib));
  // The bound: every byte the client got rid of is held on the way (its send queue, the
  // edge's queues and psock, the backend's receive queue), so this is what the stall costs.
  EXPECT_LT(cost.client_mib, 64);
  // Machine-wide figures, so other work shows up too: a loose bound, 1/4 of the push.
  EXPECT_LT(cost.grew.tcp_mib + cost.grew.slab_mib, 256);
  expect_no_leftovers();
}

// The same stall with the sockmap relay's cap lifted: what the kernel alone queues for a
// stalled reader (the reason for the cap). Not run by default (it may take ~1 GiB of kernel
// memory); run it with --gtest_also_run_disabled_tests to reproduce issue 3's figure.
TEST(RelayVmUncapped, DISABLED_BackendNeverReadsWithoutTheCap) {
  if (auto why = netns_unavailable(); !why.empty()) GTEST_SKIP() << "SKIPPED: " << why;
  if (!kernel_has_sockhash()) GTEST_SKIP() << "SKIPPED: this kernel has no sockhash maps";
  std::string why;
  auto relay = relay::SockmapRelay::create(std::make_shared<relay::SpliceRelay>(), &why,
                                           {.inflight_cap = ~0ull >> 2});
  ASSERT_TRUE(relay) << why;
  Harness h(relay);
  auto cost = stalled_reader(h);
  RecordProperty("client_mib_accepted", std::to_string(cost.client_mib));
  h.abort_live();
}

// A limit given by a reload of sockmap_queue_limit (a new relay on the same programs) governs
// the connections relayed from then on, the earlier relay's too: lifted, a backend that never
// reads lets the whole upload into the kernel's queue; back at the default, the same stall is
// bounded again.
TEST(RelayVmLimit, ALimitGivenToTheLiveRelayApplies) {
  if (auto why = netns_unavailable(); !why.empty()) GTEST_SKIP() << "SKIPPED: " << why;
  if (!kernel_has_sockhash()) GTEST_SKIP() << "SKIPPED: this kernel has no sockhash maps";
  auto fallback = std::make_shared<relay::SpliceRelay>();
  std::string why;
  auto relay = relay::SockmapRelay::create(fallback, &why);
  ASSERT_TRUE(relay) << why;
  Harness h(relay);
  const std::vector<Plan> stall{stalled_upload(128 * MiB)};

  ASSERT_TRUE(relay::SockmapRelay::create(fallback, &why, {.inflight_cap = 1ull << 40}));
  auto out = h.run(stall, 1, 4s);
  EXPECT_EQ(out[0].client_sent, 128 * MiB);
  h.abort_live();

  ASSERT_TRUE(relay::SockmapRelay::create(fallback, &why));
  out = h.run(stall, 1, 4s);
  EXPECT_LT(out[0].client_sent, 64 * MiB);
  h.abort_live();
}

// The same stall, released: under sockmap the direction paused (its source out of the
// verdict's map) and returns to the kernel; not a byte may be lost or reordered across that.
TEST_P(RelayVm, BackendStallsThenReadsEverything) {
  std::vector<Plan> plans{{.c2u = 256 * MiB, .u2c = 4 * MiB, .backend_read_delay_ms = 3000},
                          {.c2u = 64 * MiB, .u2c = 64 * MiB, .v6 = true, .backend_read_delay_ms = 2000}};
  auto out = harness().run(plans, plans.size(), 120s);
  expect_intact(plans, out);
  expect_no_leftovers();
}

// Both peers fall silent without closing: the relay ends the connection after the idle
// timeout, judged from the byte counts alone.
TEST_P(RelayVm, SilentConnectionEndsAtIdleTimeout) {
  relay::Options options;
  options.idle_timeout = 1s;
  auto& h = harness(options);
  std::vector<Plan> plans(2);
  for (std::size_t i = 0; i < plans.size(); ++i)
    plans[i] = {.c2u = 4096, .u2c = 0, .v6 = i % 2 == 1, .backend_end = Plan::End::Hold,
                .backend_reads = false, .client_fin_after_eof = true};
  const auto start = std::chrono::steady_clock::now();
  h.run(plans, plans.size(), 30s);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(h.timed_out());
  auto records = h.edge_records();
  ASSERT_EQ(records.size(), plans.size());
  for (const auto& r : records) EXPECT_EQ(r.result.end, End::IdleTimeout) << relay::to_string(r.result.end);
  EXPECT_GE(took, 1s);
  EXPECT_LT(took, 10s);
  expect_no_leftovers();
}

TEST_P(RelayVm, BytesQueuedBeforeTheHandoffArrive) {
  auto& h = harness();
  h.set_handoff_delay(300ms);
  // The backend speaks first; the client answers only after the whole greeting.
  std::vector<Plan> greeting{{.c2u = MiB, .u2c = 2 * MiB, .backend_greeting = 256 * 1024}};
  auto out = h.run(greeting, 1, 60s);
  expect_intact(greeting, out);
  // The client speaks first and waits; the backend answers only after reading its id.
  std::vector<Plan> request{{.c2u = 64 * 1024, .u2c = MiB, .v6 = true, .client_fin_after_eof = true}};
  out = h.run(request, 1, 60s);
  ASSERT_FALSE(h.timed_out());
  EXPECT_TRUE(out[0].client_intact && out[0].client_eof);
  EXPECT_EQ(out[0].client_received, MiB);
  expect_no_leftovers();
}

// Issue 17: with a hand-off threshold (relay = "sockmap"'s default, 64 KiB) a connection
// starts on copy and the kernel takes it once a direction has moved that much. Every byte
// arrives once and in order across the switch, both ways at once and echoed; a connection
// that never moved 64 KiB either way ends on copy, one that moved 4 MiB each way on sockmap.
// The sockmap relay's own threshold (sockmap_handoff_after): instantiated for sockmap alone.
class RelayVmSockmap : public RelayVm {};

TEST_P(RelayVmSockmap, HandedOffAfterACopiedStartBytesExact) {
  std::string why;
  // Bytes alone: small reads in a row (segments that a relay keeping up reads one by one)
  // would hand off some of the connections under 64 KiB.
  relay_ = relay::SockmapRelay::create(std::make_shared<relay::SpliceRelay>(), &why, {},
                                       {.bytes = 64 * 1024});
  ASSERT_TRUE(relay_) << why;
  std::mt19937_64 rng(20261205);
  std::uniform_real_distribution<double> exponent(0, std::log2(16.0 * MiB));
  auto size = [&] { return static_cast<std::uint64_t>(std::exp2(exponent(rng))) - 1; };
  std::vector<Plan> plans(60);
  for (std::size_t i = 0; i < plans.size(); ++i)
    plans[i] = {.c2u = size(), .u2c = size(), .v6 = i % 2 == 1};
  plans[0] = {.c2u = 100, .u2c = 1000};
  plans[1] = {.c2u = 8 * MiB, .u2c = 8 * MiB, .v6 = true};
  plans[2] = {.c2u = 8 * MiB, .u2c = 8 * MiB, .backend_echoes = true};
  auto out = harness().run(plans, plans.size(), 240s);
  expect_intact(plans, out);
  for (const auto& r : harness_->edge_records()) {
    SCOPED_TRACE(std::to_string(r.c2u) + " up, " + std::to_string(r.u2c) + " down");
    if (std::max(r.c2u, r.u2c) < 64 * 1024) {
      EXPECT_EQ(r.mode, Mode::Copy);
    }
    if (std::min(r.c2u, r.u2c) >= 4 * MiB) {
      EXPECT_EQ(r.mode, Mode::Sockmap);
    }
  }
  expect_no_leftovers();
}

// The proof by small reads alone (HandoffProof, relay/then.h; no bytes threshold). Over veth
// and loopback, IPv4 and IPv6, connections that ask and answer in small messages go to the
// kernel after 16 exchanges, one with 10 exchanges stays on copy, and a full-speed echo stream
// over loopback, whose reads fill the buffer, stays on copy; every byte comes back once, in
// order.
TEST_P(RelayVmSockmap, SmallReadsInARowHandInteractiveConnectionsOffBulkStaysOnCopy) {
  for (Link link : {Link::Veth, Link::Loopback}) {
    SCOPED_TRACE(link == Link::Veth ? "veth" : "loopback");
    std::string why;
    relay_ = relay::SockmapRelay::create(
        std::make_shared<relay::CopyRelay>(), &why, {},
        {.bytes = relay::HandoffProof::kNever,
         .small_reads = relay::HandoffProof::kDefaultSmallReads});
    ASSERT_TRUE(relay_) << why;
    harness_.reset();
    auto& h = harness({}, link);
    std::vector<Plan> plans{
        {.c2u = 2000 * 64, .u2c = 2000 * 64, .backend_echoes = true, .client_message = 64},
        {.c2u = 500 * 1000, .u2c = 500 * 1000, .v6 = true, .backend_echoes = true,
         .client_message = 1000},
        {.c2u = 10 * 64, .u2c = 10 * 64, .backend_echoes = true, .client_message = 64}};
    if (link == Link::Loopback)
      plans.push_back({.c2u = 256 * MiB, .u2c = 256 * MiB, .backend_echoes = true});
    auto out = h.run(plans, plans.size(), 120s);
    expect_intact(plans, out);
    std::map<std::uint64_t, Mode> mode_by_upload;  // c2u counts the 8-byte id
    for (const auto& r : h.edge_records()) mode_by_upload[r.c2u - 8] = r.mode;
    EXPECT_EQ(mode_by_upload[2000 * 64], Mode::Sockmap);
    EXPECT_EQ(mode_by_upload[500 * 1000], Mode::Sockmap);
    EXPECT_EQ(mode_by_upload[10 * 64], Mode::Copy);
    if (link == Link::Loopback) {
      EXPECT_EQ(mode_by_upload[256 * MiB], Mode::Copy);
    }
    expect_no_leftovers();
  }
}

TEST_P(RelayVm, StopWithLiveConnectionsAborts) {
  auto& h = harness();
  std::vector<Plan> plans(20);
  for (std::size_t i = 0; i < plans.size(); ++i)
    plans[i] = {.c2u = 64 * MiB, .u2c = 64 * MiB, .v6 = i % 2 == 1, .client_read_rate = 4 * MiB};
  auto running = std::async(std::launch::async, [&] { return h.run(plans, plans.size(), 60s); });
  for (int i = 0; i < 100 && h.live_connections() < plans.size(); ++i) std::this_thread::sleep_for(50ms);
  std::this_thread::sleep_for(500ms);
  ASSERT_EQ(h.live_connections(), plans.size());
  h.abort_live();
  auto out = running.get();
  EXPECT_FALSE(h.timed_out());  // every peer saw its connection end
  auto records = h.edge_records();
  ASSERT_EQ(records.size(), plans.size());
  for (const auto& r : records) EXPECT_EQ(r.result.end, End::Aborted) << relay::to_string(r.result.end);
  for (const auto& o : out) EXPECT_TRUE(o.client_intact && o.backend_intact);
  expect_no_leftovers();
}

TEST_P(RelayVm, TenThousandConnectionsLeaveNothingBehind) {
  auto& h = harness();
  std::vector<Plan> warmup(10);
  h.run(warmup, 10, 30s);
  const std::size_t fds = open_fds();
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::uint64_t> size(0, 4096);
  std::vector<Plan> plans(10000);
  for (std::size_t i = 0; i < plans.size(); ++i)
    plans[i] = {.c2u = size(rng), .u2c = size(rng), .v6 = i % 2 == 1};
  auto out = h.run(plans, 64, 300s);
  ASSERT_FALSE(h.timed_out());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < plans.size(); ++i) {
    const auto& o = out[i];
    if (o.client_intact && o.backend_intact && o.client_eof && o.backend_eof &&
        o.client_received == plans[i].u2c && o.backend_received == plans[i].c2u)
      continue;
    if (++bad <= 3)
      ADD_FAILURE() << "connection " << i << ": backend got " << o.backend_received << " of "
                    << plans[i].c2u << " (intact " << o.backend_intact << ", eof " << o.backend_eof
                    << ", " << o.backend_error.message() << "), client got " << o.client_received
                    << " of " << plans[i].u2c << " (intact " << o.client_intact << ", eof "
                    << o.client_eof << ", " << o.client_error.message() << ")";
  }
  EXPECT_EQ(bad, 0u);
  expect_no_leftovers();
  EXPECT_EQ(open_fds(), fds);
  // Pipes only in the splice pool, which holds at most what the 64 connections at once used.
  EXPECT_LE(open_fds(true), 64u * 2 * 2);
}

INSTANTIATE_TEST_SUITE_P(Modes, RelayVm, ::testing::Values(Mode::Sockmap, Mode::Splice, Mode::Copy),
                         [](const auto& info) { return std::string(relay::to_string(info.param)); });
INSTANTIATE_TEST_SUITE_P(Auto, RelayVmAuto, ::testing::Values(Mode::Auto),
                         [](const auto& info) { return std::string(relay::to_string(info.param)); });
INSTANTIATE_TEST_SUITE_P(Splice, RelayVmFewPipes, ::testing::Values(Mode::Splice),
                         [](const auto& info) { return std::string(relay::to_string(info.param)); });
INSTANTIATE_TEST_SUITE_P(Sockmap, RelayVmSockmap, ::testing::Values(Mode::Sockmap),
                         [](const auto& info) { return std::string(relay::to_string(info.param)); });

}  // namespace
}  // namespace snigate::vmtest
