// UDP flow benchmark, one run: datagrams/s and CPU per GiB of one flow of 1200-byte datagrams
// (a full QUIC packet) from a client to a sink, three ways, in interleaved rounds:
//   direct     client -> sink, nothing in between (over veth: the edge namespace routes)
//   kernel     client -> edge listener, forwarded by bpf/udp_flow.bpf.c (UdpFlowForwarder)
//   userspace  client -> edge listener socket, recvmmsg -> sendmmsg on the flow's upstream
//              socket: a STAND-IN, the loop a userspace UDP forwarder runs at its best
//              (batched, one thread, no parsing), not snigated's own path
// Two shapes: "loopback" (all on the edge namespace's lo) and "veth" (client ns -veth- edge
// ns -veth- backend ns). The client sends as fast as sendmmsg goes for --seconds; what counts
// is what the sink received. CPU per GiB received: the path's own (this process, whose
// threads are every party, and ksoftirqd), and the whole machine's busy time (/proc/stat),
// which other load inflates. One line per run: shape= mode= round= datagrams_s=
// cpu_s_per_gib= machine_cpu_s_per_gib= sent= received=. Needs root. Namespaces sg-udpb-*, addresses 10.9.x.x and fd00:9:: only
// inside them.
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "netns.h"
#include "udp_flow/udp_flow_forwarder.h"
#include "udp_peers.h"

namespace {

using namespace snigate;
using Steady = std::chrono::steady_clock;
constexpr std::size_t kDatagram = 1200;
constexpr int kBatch = 32;

// Busy seconds of all CPUs (/proc/stat's first line: user nice system idle iowait irq
// softirq steal; guest time is already in user): everything, other load included.
double machine_busy_s() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  stat >> cpu;
  double v[8] = {};
  for (double& x : v) stat >> x;
  return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// The ksoftirqd threads, which run what softirq processing the sending thread leaves over.
std::vector<std::string> ksoftirqd_stats() {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    if (comm >> name && name.rfind("ksoftirqd/", 0) == 0) out.push_back(entry.path() / "stat");
  }
  return out;
}

// CPU seconds of the path alone: this process (sender, sink and forwarder threads; with tick
// accounting the softirq work done in their context is their system time) plus ksoftirqd.
// Other load on the machine stays out, unlike machine_busy_s.
double path_cpu_s(const std::vector<std::string>& ksoftirqd) {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  double s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
             static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  for (const auto& path : ksoftirqd) {
    std::ifstream stat(path);
    std::string line;
    std::getline(stat, line);
    std::istringstream fields(line.substr(line.rfind(')') + 2));  // after "pid (comm) "
    std::string f;
    double utime = 0, stime = 0;
    for (int i = 3; fields >> f && i <= 15; ++i) {  // utime and stime are fields 14 and 15
      if (i == 14) utime = std::stod(f);
      if (i == 15) stime = std::stod(f);
    }
    s += (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  return s;
}

// A thread that counts what arrives on `fd` until stopped.
class Sink {
 public:
  explicit Sink(int fd) : thread_([this, fd] { loop(fd); }) {}
  ~Sink() {
    stop_ = true;
    thread_.join();
  }
  std::uint64_t datagrams() const { return datagrams_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  void loop(int fd) {
    std::vector<std::vector<char>> bufs(kBatch, std::vector<char>(2048));
    std::vector<iovec> iov(kBatch);
    std::vector<mmsghdr> msgs(kBatch);
    for (int i = 0; i < kBatch; ++i) {
      iov[i] = {bufs[i].data(), bufs[i].size()};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    timeval tv{0, 100'000};  // stop within 0.1 s
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (!stop_) {
      int n = ::recvmmsg(fd, msgs.data(), kBatch, MSG_WAITFORONE, nullptr);
      for (int i = 0; i < n; ++i) bytes_ += msgs[i].msg_len;
      if (n > 0) datagrams_ += static_cast<std::uint64_t>(n);
    }
  }
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> datagrams_{0}, bytes_{0};
  std::thread thread_;
};

// The userspace stand-in: what arrives on `from` goes out of the connected `to`.
class UserspaceForwarder {
 public:
  UserspaceForwarder(int from, int to) : thread_([this, from, to] { loop(from, to); }) {}
  ~UserspaceForwarder() {
    stop_ = true;
    thread_.join();
  }

 private:
  void loop(int from, int to) {
    std::vector<std::vector<char>> bufs(kBatch, std::vector<char>(2048));
    std::vector<iovec> iov(kBatch);
    std::vector<mmsghdr> msgs(kBatch);
    timeval tv{0, 100'000};
    ::setsockopt(from, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (!stop_) {
      for (int i = 0; i < kBatch; ++i) {
        iov[i] = {bufs[i].data(), bufs[i].size()};
        msgs[i].msg_hdr = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int n = ::recvmmsg(from, msgs.data(), kBatch, MSG_WAITFORONE, nullptr);
      if (n <= 0) continue;
      for (int i = 0; i < n; ++i) iov[i].iov_len = msgs[i].msg_len;
      ::sendmmsg(to, msgs.data(), static_cast<unsigned>(n), 0);
    }
  }
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Run {
  double datagrams_s = 0, cpu_s_per_gib = 0, machine_cpu_s_per_gib = 0;
  std::uint64_t sent = 0, received = 0;
};

// Sends for `seconds` from `client` (connected) and measures what `sink` gets.
Run measure(vmtest::UdpSocket& client, const Sink& sink, double seconds,
            const std::vector<std::string>& ksoftirqd) {
  std::vector<char> payload(kDatagram, 'q');
  iovec iov{payload.data(), payload.size()};
  std::vector<mmsghdr> msgs(kBatch);
  for (auto& m : msgs) {
    m.msg_hdr.msg_iov = &iov;
    m.msg_hdr.msg_iovlen = 1;
  }
  const auto received0 = sink.datagrams();
  const auto bytes0 = sink.bytes();
  const double path0 = path_cpu_s(ksoftirqd), machine0 = machine_busy_s();
  const auto start = Steady::now();
  const auto stop = start + std::chrono::duration<double>(seconds);
  Run r;
  while (Steady::now() < stop) {
    int n = ::sendmmsg(client.fd(), msgs.data(), kBatch, 0);
    if (n > 0) r.sent += static_cast<std::uint64_t>(n);
  }
  const double elapsed = std::chrono::duration<double>(Steady::now() - start).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // what is still on its way
  const double path1 = path_cpu_s(ksoftirqd), machine1 = machine_busy_s();
  r.received = sink.datagrams() - received0;
  const double gib = static_cast<double>(sink.bytes() - bytes0) / (1u << 30);
  r.datagrams_s = static_cast<double>(r.received) / elapsed;
  r.cpu_s_per_gib = gib > 0 ? (path1 - path0) / gib : 0;
  r.machine_cpu_s_per_gib = gib > 0 ? (machine1 - machine0) / gib : 0;
  return r;
}

int bench(const std::string& shape, double seconds, int rounds) {
  vmtest::Topology net("sg-udpb", 9);
  const bool veth = shape == "veth";
  const std::string edge = net.edge();
  const std::string client_ns = veth ? net.client() : edge;
  const std::string sink_ns = veth ? net.backend() : edge;
  const auto& a = net.v4();
  if (veth) {
    // The direct path: the edge namespace routes between its links, as any router would.
    vmtest::run("ip netns exec " + edge + " sysctl -qw net.ipv4.ip_forward=1");
    vmtest::run("ip -n " + net.client() + " route add 10.9.2.0/24 via " + a.edge_front);
    vmtest::run("ip -n " + net.backend() + " route add 10.9.1.0/24 via " + a.edge_back);
  }
  vmtest::UdpSocket client(client_ns, veth ? a.client : "127.0.0.1");
  vmtest::UdpSocket listener(edge, veth ? a.edge_front : "127.0.0.1");
  vmtest::UdpSocket upstream(edge, veth ? a.edge_back : "127.0.0.1");
  vmtest::UdpSocket sink_socket(sink_ns, veth ? a.backend : "127.0.0.1");
  for (auto* s : {&client, &listener, &upstream, &sink_socket}) {
    int size = 8 << 20;  // the same deep buffers for every mode
    ::setsockopt(s->fd(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    ::setsockopt(s->fd(), SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size);
  }
  upstream.connect_to(sink_socket.local());
  std::unique_ptr<udp_flow::UdpFlowForwarder> fwd;
  std::string why;
  const std::vector<std::string> ifs = veth ? std::vector<std::string>{"veth0", "veth1"}
                                            : std::vector<std::string>{"lo"};
  vmtest::in_netns(edge, [&] { fwd = udp_flow::UdpFlowForwarder::open(ifs, why); });
  if (!fwd) {
    std::fprintf(stderr, "udp-flow-bench: %s\n", why.c_str());
    return 1;
  }
  const udp_flow::UdpFlowSpec flow{client.local(), listener.local(), upstream.local(),
                                   sink_socket.local()};
  Sink sink(sink_socket.fd());
  const auto ksoftirqd = ksoftirqd_stats();
  const std::vector<std::string> modes = {"direct", "kernel", "userspace"};
  for (int round = 0; round < rounds; ++round) {
    for (std::size_t k = 0; k < modes.size(); ++k) {
      const std::string& mode = modes[(k + round) % modes.size()];  // each round starts later
      Run r;
      if (mode == "direct") {
        client.connect_to(sink_socket.local());
        r = measure(client, sink, seconds, ksoftirqd);
      } else if (mode == "kernel") {
        client.connect_to(listener.local());
        if (!fwd->add(flow, why)) {
          std::fprintf(stderr, "udp-flow-bench: %s\n", why.c_str());
          return 1;
        }
        r = measure(client, sink, seconds, ksoftirqd);
        auto c = fwd->counters(flow);
        fwd->remove(flow);
        if (!c || c->packets_in < r.received) {
          std::fprintf(stderr, "udp-flow-bench: the kernel counted fewer than the sink got\n");
          return 1;
        }
      } else {
        client.connect_to(listener.local());
        UserspaceForwarder relay(listener.fd(), upstream.fd());
        r = measure(client, sink, seconds, ksoftirqd);
      }
      listener.drain();
      std::printf("shape=%s mode=%s round=%d datagrams_s=%.0f cpu_s_per_gib=%.3f "
                  "machine_cpu_s_per_gib=%.3f sent=%llu received=%llu\n",
                  shape.c_str(), mode.c_str(), round, r.datagrams_s, r.cpu_s_per_gib,
                  r.machine_cpu_s_per_gib,
                  static_cast<unsigned long long>(r.sent),
                  static_cast<unsigned long long>(r.received));
      std::fflush(stdout);
    }
  }
  vmtest::in_netns(edge, [&] { fwd.reset(); });
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"UDP flow forwarding: kernel, userspace and direct"};
  std::vector<std::string> shapes = {"loopback", "veth"};
  double seconds = 3;
  int rounds = 5;
  app.add_option("--shapes", shapes, "loopback and/or veth");
  app.add_option("--seconds", seconds, "length of one run");
  app.add_option("--rounds", rounds, "interleaved rounds (the script takes medians)");
  CLI11_PARSE(app, argc, argv);
  if (auto why = vmtest::netns_unavailable(); !why.empty()) {
    std::fprintf(stderr, "udp-flow-bench: %s\n", why.c_str());
    return 2;
  }
  for (const auto& shape : shapes)
    if (int rc = bench(shape, seconds, rounds)) return rc;
  return 0;
}
