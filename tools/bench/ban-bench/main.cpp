// Ban benchmark, one run: loads BANS bans (IPv4 and IPv6 hosts) through BanManager into the
// pinned tries (timing that and one sweeper pass), then measures
//  1. the accept-time check, BanCheck::banned(), in ns per call (hit and miss), median of runs;
//  2. the XDP program alone (BPF_PROG_TEST_RUN on a SYN from a banned source), ns per packet;
//  3. a SYN flood from a client namespace over veth into the edge namespace where the program
//     is attached: packets per second the program dropped, against the same flood from an
//     address that is not banned (passed to the stack).
// Needs root. Namespaces sg-ban-*, addresses 10.5.x.x and fd00:5:: only inside them.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "bans/ban_manager.h"
#include "bans/bpf_ban_map.h"
#include "netns.h"

namespace {

using namespace snigate;
using Steady = std::chrono::steady_clock;
namespace ip = boost::asio::ip;

struct Options {
  std::size_t bans = 100'000;
  std::size_t flood_packets = 2'000'000;
  double flood_seconds = 5.0;
  int runs = 5;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// 60% IPv4 hosts from 10.5.16.0 up, the rest IPv6 hosts in fd00:5::/64 from fd00:5::1:0 up;
// the topology's 10.5.1.x and fd00:5:1:: stay outside unless banned on purpose.
std::vector<net::Prefix> ban_set(std::size_t n) {
  std::vector<net::Prefix> out;
  const std::size_t v4 = std::min<std::size_t>(n * 6 / 10, 60'000);
  for (std::size_t i = 0; i < v4; ++i)
    out.push_back(net::Prefix::host(ip::address_v4(0x0A051000u + static_cast<std::uint32_t>(i))));
  for (std::size_t i = 0; out.size() < n; ++i) {
    ip::address_v6::bytes_type b{0xfd, 0x00, 0x00, 0x05};
    const std::uint32_t v = 0x10000u + static_cast<std::uint32_t>(i);
    b[12] = v >> 24; b[13] = v >> 16; b[14] = v >> 8; b[15] = v;
    out.push_back(net::Prefix::host(ip::address_v6(b)));
  }
  return out;
}

std::uint16_t checksum(const void* data, std::size_t len, std::uint32_t sum = 0) {
  auto p = static_cast<const std::uint8_t*>(data);
  for (; len > 1; p += 2, len -= 2) sum += (p[0] << 8) | p[1];
  if (len) sum += p[0] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

std::array<std::uint8_t, 6> mac_of(const std::string& ns, const std::string& ifname) {
  ifreq req{};
  std::strncpy(req.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  vmtest::in_netns(ns, [&] {
    int s = ::socket(AF_INET, SOCK_DGRAM, 0);
    ::ioctl(s, SIOCGIFHWADDR, &req);
    ::close(s);
  });
  std::array<std::uint8_t, 6> mac{};
  std::memcpy(mac.data(), req.ifr_hwaddr.sa_data, 6);
  return mac;
}

// Ethernet + IPv4 + TCP SYN from `src` to `dst`:443, checksums valid so the stack treats
// the unbanned flood as real SYNs.
std::vector<std::uint8_t> syn_frame(const std::array<std::uint8_t, 6>& dst_mac,
                                    const std::array<std::uint8_t, 6>& src_mac, const char* src,
                                    const char* dst) {
  std::vector<std::uint8_t> f(sizeof(ether_header) + sizeof(iphdr) + sizeof(tcphdr));
  auto* eth = reinterpret_cast<ether_header*>(f.data());
  std::memcpy(eth->ether_dhost, dst_mac.data(), 6);
  std::memcpy(eth->ether_shost, src_mac.data(), 6);
  eth->ether_type = htons(ETHERTYPE_IP);
  auto* iph = reinterpret_cast<iphdr*>(eth + 1);
  iph->version = 4;
  iph->ihl = 5;
  iph->tot_len = htons(sizeof(iphdr) + sizeof(tcphdr));
  iph->ttl = 64;
  iph->protocol = IPPROTO_TCP;
  inet_pton(AF_INET, src, &iph->saddr);
  inet_pton(AF_INET, dst, &iph->daddr);
  iph->check = htons(checksum(iph, sizeof *iph));
  auto* tcp = reinterpret_cast<tcphdr*>(iph + 1);
  tcp->source = htons(40000);
  tcp->dest = htons(443);
  tcp->seq = htonl(1);
  tcp->doff = 5;
  tcp->syn = 1;
  tcp->window = htons(65535);
  std::uint8_t pseudo[12];
  std::memcpy(pseudo, &iph->saddr, 4);
  std::memcpy(pseudo + 4, &iph->daddr, 4);
  pseudo[8] = 0;
  pseudo[9] = IPPROTO_TCP;
  pseudo[10] = 0;
  pseudo[11] = sizeof(tcphdr);
  std::uint32_t sum = 0;
  for (int i = 0; i < 12; i += 2) sum += (pseudo[i] << 8) | pseudo[i + 1];
  tcp->check = htons(checksum(tcp, sizeof *tcp, sum));
  return f;
}

struct FloodResult {
  std::size_t sent = 0;
  double seconds = 0;
};

// Sends `frame` out of the client's veth with sendmmsg, until `count` or `seconds`.
FloodResult flood(const std::string& ns, const std::string& ifname, std::vector<std::uint8_t> frame,
                  const Options& o) {
  int s = -1;
  int ifindex = 0;
  vmtest::in_netns(ns, [&] {
    s = ::socket(AF_PACKET, SOCK_RAW, 0);
    ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  });
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  std::memcpy(to.sll_addr, frame.data(), 6);
  constexpr int kBatch = 64;
  iovec iov{frame.data(), frame.size()};
  std::vector<mmsghdr> msgs(kBatch);
  for (auto& m : msgs) {
    m.msg_hdr.msg_name = &to;
    m.msg_hdr.msg_namelen = sizeof to;
    m.msg_hdr.msg_iov = &iov;
    m.msg_hdr.msg_iovlen = 1;
  }
  FloodResult r;
  const auto start = Steady::now();
  const auto stop = start + std::chrono::duration<double>(o.flood_seconds);
  while (r.sent < o.flood_packets) {
    int n = ::sendmmsg(s, msgs.data(), kBatch, 0);
    if (n > 0) r.sent += static_cast<std::size_t>(n);
    if ((r.sent & 0x3fff) < kBatch && Steady::now() > stop) break;
  }
  r.seconds = std::chrono::duration<double>(Steady::now() - start).count();
  ::close(s);
  return r;
}

// The client's second source: the flood that is not banned.
constexpr const char* kUnbanned = "10.5.1.3";
constexpr const char* kEdgeIf = "veth0";  // the edge's side of the client link

int run(const Options& o) {
  spdlog::set_level(spdlog::level::warn);
  vmtest::Topology net("sg-ban", 5);
  vmtest::run("ip -n " + net.client() + " addr add " + kUnbanned + "/24 dev veth0");
  const char* banned_src = net.v4().client.c_str();
  const char* edge_addr = net.v4().edge_front.c_str();
  const std::string pin_root = "/sys/fs/bpf/sg-ban-bench-" + std::to_string(::getpid());
  std::string tmpl = (std::filesystem::temp_directory_path() / "sg-ban-bench-XXXXXX").string();
  const std::string store_dir = ::mkdtemp(tmpl.data());
  struct Cleanup {
    std::string a, b;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(a, ec);
      std::filesystem::remove_all(b, ec);
    }
  } cleanup{pin_root, store_dir};

  bans::BansConfig cfg;
  cfg.pin_dir = pin_root + "/v1";
  cfg.store = store_dir + "/bans.db";
  cfg.interfaces = {kEdgeIf};
  cfg.sweep_interval = std::chrono::seconds(0);
  std::string error;
  std::unique_ptr<bans::BanManager> manager;
  vmtest::in_netns(net.edge(), [&] { manager = bans::BanManager::open(cfg, nullptr, error); });
  // Closed inside the edge, where its XDP attachment is (detached by interface index).
  struct Close {
    std::unique_ptr<bans::BanManager>& m;
    const std::string& edge;
    ~Close() {
      if (m) vmtest::in_netns(edge, [&] { m.reset(); });
    }
  } close_manager{manager, net.edge()};
  if (!manager) {
    std::fprintf(stderr, "ban-bench: %s\n", error.c_str());
    return 1;
  }
  std::printf("enforcement: %s\n", manager->enforcement().at(0).c_str());

  auto t0 = Steady::now();
  bans::BanRequest req;
  req.source = "bench";
  req.reason = "bench";
  for (const auto& p : ban_set(o.bans)) {
    req.prefix = p;
    if (!manager->ban(req).ok) return 1;
  }
  req.prefix = *net::Prefix::parse(banned_src);  // the flood source
  manager->ban(req);
  const double load_s = std::chrono::duration<double>(Steady::now() - t0).count();
  std::printf("bans loaded: %zu via BanManager::ban (map + SQLite) in %.2f s = %.0f bans/s\n",
              manager->totals().active, load_s, manager->totals().active / load_s);

  {
    std::vector<double> ms;
    for (int r = 0; r < o.runs; ++r) {
      auto a = Steady::now();
      manager->sweep();
      ms.push_back(std::chrono::duration<double, std::milli>(Steady::now() - a).count());
    }
    std::printf("sweeper pass over %zu bans (none due): %.2f ms (median of %d)\n",
                manager->totals().active, median(ms), o.runs);
  }

  // 1. Accept time.
  const std::vector<std::pair<const char*, ip::address>> probes = {
      {"hit  v4 host ", ip::make_address("10.5.16.77")},
      {"miss v4      ", ip::make_address(kUnbanned)},
      {"hit  v6 host ", ip::make_address("fd00:5::1:77")},
      {"miss v6      ", ip::make_address(net.v6().client)}};
  constexpr int kCalls = 200'000;
  for (const auto& [label, address] : probes) {
    std::vector<double> ns;
    for (int r = 0; r < o.runs; ++r) {
      auto a = Steady::now();
      for (int i = 0; i < kCalls; ++i)
        if (manager->banned(address) != (label[0] == 'h')) return 1;
      ns.push_back(std::chrono::duration<double, std::nano>(Steady::now() - a).count() / kCalls);
    }
    std::printf("accept-time BanCheck::banned %s: %.0f ns/call (median of %d x %d)\n", label,
                median(ns), o.runs, kCalls);
  }

  // 2. The program alone.
  const auto edge_mac = mac_of(net.edge(), kEdgeIf);
  const auto client_mac = mac_of(net.client(), "veth0");
  auto banned_frame = syn_frame(edge_mac, client_mac, banned_src, edge_addr);
  auto passed_frame = syn_frame(edge_mac, client_mac, kUnbanned, edge_addr);
  // The program the manager attached, found the way an operator would (ip link / bpftool).
  __u32 prog_id = 0;
  vmtest::in_netns(net.edge(), [&] {
    bpf_xdp_query_id(static_cast<int>(if_nametoindex(kEdgeIf)), 0, &prog_id);
  });
  if (prog_id == 0) {
    std::fprintf(stderr, "ban-bench: no XDP program on %s\n", kEdgeIf);
    return 1;
  }
  const int prog = bpf_prog_get_fd_by_id(prog_id);
  for (auto [label, frame] : {std::pair{"drop (banned src)", &banned_frame},
                              std::pair{"pass (not banned)", &passed_frame}}) {
    std::vector<double> ns;
    for (int r = 0; r < o.runs; ++r) {
      std::vector<std::uint8_t> out(frame->size() + 64);
      LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame->data(), .data_out = out.data(),
                  .data_size_in = static_cast<__u32>(frame->size()),
                  .data_size_out = static_cast<__u32>(out.size()), .repeat = 1'000'000);
      if (bpf_prog_test_run_opts(prog, &run) != 0) return 1;
      ns.push_back(run.duration);
    }
    std::printf("XDP program alone (BPF_PROG_TEST_RUN), %s: %.1f ns/packet = %.2f Mpps per core\n",
                label, median(ns), 1e3 / median(ns));
  }
  ::close(prog);

  // 3. The flood, banned source then the same flood from a source that is not banned.
  for (auto [label, frame] : {std::pair{"banned", &banned_frame},
                              std::pair{"unbanned", &passed_frame}}) {
    const auto before = manager->totals();
    const auto result = flood(net.client(), "veth0", *frame, o);
    ::usleep(200'000);  // let the receiving side drain its queue
    const auto after = manager->totals();
    const auto seen = after.packets - before.packets;
    const auto dropped = after.dropped - before.dropped;
    std::printf("flood %s src %s: sent %zu in %.2f s (%.0f pps); program saw %llu, dropped %llu = %.0f "
                "drops/s\n",
                label, frame == &banned_frame ? banned_src : kUnbanned, result.sent, result.seconds, result.sent / result.seconds,
                static_cast<unsigned long long>(seen), static_cast<unsigned long long>(dropped),
                dropped / result.seconds);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--bans") o.bans = std::stoul(argv[i + 1]);
    else if (k == "--packets") o.flood_packets = std::stoul(argv[i + 1]);
    else if (k == "--seconds") o.flood_seconds = std::stod(argv[i + 1]);
    else if (k == "--runs") o.runs = std::stoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: ban-bench [--bans N] [--packets N] [--seconds S] [--runs N]\n");
      return 2;
    }
  }
  if (::geteuid() != 0) {
    std::fprintf(stderr, "ban-bench: needs root (BPF, network namespaces)\n");
    return 2;
  }
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ban-bench: %s\n", e.what());
    return 1;
  }
}
