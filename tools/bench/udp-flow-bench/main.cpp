// UDP flow benchmark, one run: datagrams/s and CPU per GiB of one flow of 1200-byte datagrams
// (a full QUIC packet) from a client to a sink, four ways, in interleaved rounds:
//   direct     client -> sink, nothing in between (over veth: the edge namespace routes)
//   kernel     through snigated with [daemon] quic_kernel_interfaces: its quic listener
//              routes the flow on a real client Initial, then the kernel path (bpf/udp_flow)
//              moves the datagrams
//   userspace  through snigated without it: its quic listener forwards every datagram
//   loop       the bench's own recvmmsg -> sendmmsg loop on a listener and an upstream
//              socket: what a userspace forwarder does at its best (batched, one thread,
//              nothing else), for scale
// Two shapes: "loopback" (all on the edge namespace's lo) and "veth" (client ns -veth- edge
// ns -veth- backend ns). The client sends as fast as sendmmsg goes for --seconds; what counts
// is what the sink received. CPU per GiB received: the path's own (this process, whose
// threads are every party but snigated, plus snigated's and ksoftirqd's), and the whole
// machine's busy time (/proc/stat), which other load inflates. One line per run: shape= mode=
// round= datagrams_s= cpu_s_per_gib= machine_cpu_s_per_gib= sent= received=; then each
// snigated's access-log line for its flow. Needs root. Namespaces sg-udpb-*, addresses
// 10.9.x.x only inside them.
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "netns.h"
#include "udp_peers.h"

namespace {

using namespace snigate;
using Steady = std::chrono::steady_clock;
namespace fs = std::filesystem;
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

// CPU seconds of the path alone: this process (sender, sink and loop threads; with tick
// accounting the softirq work done in their context is their system time) plus the processes
// whose /proc/PID/stat files are in `others` (snigated, ksoftirqd). Other load on the machine
// stays out, unlike machine_busy_s.
double path_cpu_s(const std::vector<std::string>& others) {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  double s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
             static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  for (const auto& path : others) {
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

struct Options {
  std::string snigated;
  std::string initial;
};

struct Run {
  double datagrams_s = 0, cpu_s_per_gib = 0, machine_cpu_s_per_gib = 0;
  std::uint64_t sent = 0, received = 0;
};

// Sends for `seconds` from `client` (connected) and measures what `sink` gets.
Run measure(vmtest::UdpSocket& client, const Sink& sink, double seconds,
            const std::vector<std::string>& others) {
  std::vector<char> payload(kDatagram, 'q');
  iovec iov{payload.data(), payload.size()};
  std::vector<mmsghdr> msgs(kBatch);
  for (auto& m : msgs) {
    m.msg_hdr.msg_iov = &iov;
    m.msg_hdr.msg_iovlen = 1;
  }
  const auto received0 = sink.datagrams();
  const auto bytes0 = sink.bytes();
  const double path0 = path_cpu_s(others), machine0 = machine_busy_s();
  const auto start = Steady::now();
  const auto stop = start + std::chrono::duration<double>(seconds);
  Run r;
  while (Steady::now() < stop) {
    int n = ::sendmmsg(client.fd(), msgs.data(), kBatch, 0);
    if (n > 0) r.sent += static_cast<std::uint64_t>(n);
  }
  const double elapsed = std::chrono::duration<double>(Steady::now() - start).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // what is still on its way
  const double path1 = path_cpu_s(others), machine1 = machine_busy_s();
  r.received = sink.datagrams() - received0;
  const double gib = static_cast<double>(sink.bytes() - bytes0) / (1u << 30);
  r.datagrams_s = static_cast<double>(r.received) / elapsed;
  r.cpu_s_per_gib = gib > 0 ? (path1 - path0) / gib : 0;
  r.machine_cpu_s_per_gib = gib > 0 ? (machine1 - machine0) / gib : 0;
  return r;
}

// snigated in namespace `ns` (a child that dies with the bench), until destroyed.
class Snigated {
 public:
  Snigated(const std::string& ns, const std::string& binary, const fs::path& config,
           const fs::path& log)
      : log_(log) {
    vmtest::in_netns(ns, [&] {
      pid_ = ::fork();
      if (pid_ == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::execl(binary.c_str(), binary.c_str(), "-c", config.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
      }
    });
  }
  ~Snigated() {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100 && ::waitpid(pid_, nullptr, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }
  // What the log's line matching `pattern` captured, within 10 s; empty if it never came.
  std::string wait_log(const std::regex& pattern) const {
    for (int i = 0; i < 200; ++i) {
      std::ifstream in(log_);
      std::stringstream text;
      text << in.rdbuf();
      const std::string all = text.str();
      std::smatch m;
      if (std::regex_search(all, m, pattern)) return m.size() > 1 ? m[1].str() : m[0].str();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return {};
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
};

fs::path write_config(const fs::path& dir, const std::string& name, const std::string& listen_ip,
                      const sockaddr_storage& sink, const std::string& kernel_interfaces) {
  const fs::path path = dir / (name + ".toml");
  std::ofstream(path) << "[daemon]\nworkers = 1\nlog_level = \"info\"\n"
                      << "access_log = \"" << (dir / (name + ".access.log")).string() << "\"\n"
                      << "control_socket = \"" << (dir / (name + ".sock")).string() << "\"\n"
                      << "drain_timeout = \"2s\"\n"
                      << (kernel_interfaces.empty()
                              ? ""
                              : "quic_kernel_interfaces = " + kernel_interfaces + "\n")
                      << "[[listener]]\nname = \"h3\"\nlisten = \"" << listen_ip << ":0\"\n"
                      << "protocol = \"quic\"\ntable = \"t\"\nflow_idle_timeout = \"600s\"\n"
                      << "[table.t]\ndefault = \"sink\"\n[backend.sink]\nservers = [\""
                      << vmtest::to_string(sink) << "\"]\n[bans]\nenabled = false\n";
  return path;
}

std::vector<std::uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int bench(const std::string& shape, double seconds, int rounds, const Options& o) {
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
  const std::string client_ip = veth ? a.client : "127.0.0.1";
  const std::string listen_ip = veth ? a.edge_front : "127.0.0.1";
  vmtest::UdpSocket sink_socket(sink_ns, veth ? a.backend : "127.0.0.1");
  vmtest::UdpSocket listener(edge, listen_ip);  // the bench's own forwarding loop
  vmtest::UdpSocket upstream(edge, veth ? a.edge_back : "127.0.0.1");
  upstream.connect_to(sink_socket.local());
  // One client socket per column: each snigated flow is keyed by its client's port.
  std::map<std::string, std::unique_ptr<vmtest::UdpSocket>> client;
  for (const char* mode : {"direct", "kernel", "userspace", "loop"})
    client[mode] = std::make_unique<vmtest::UdpSocket>(client_ns, client_ip);
  for (auto* s : {&sink_socket, &listener, &upstream, client["direct"].get(),
                  client["kernel"].get(), client["userspace"].get(), client["loop"].get()}) {
    int size = 8 << 20;  // deep buffers for the sender and the sink in every column
    ::setsockopt(s->fd(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    ::setsockopt(s->fd(), SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size);
  }

  // snigated twice, before any thread of ours runs (fork): with the kernel path and without.
  char tmpl[] = "/tmp/udp-flow-bench-XXXXXX";
  const fs::path dir = ::mkdtemp(tmpl);
  struct RemoveDir {
    fs::path d;
    ~RemoveDir() { std::error_code ec; fs::remove_all(d, ec); }
  } remove_dir{dir};
  const std::string interfaces = veth ? "[\"veth0\", \"veth1\"]" : "[\"lo\"]";
  std::map<std::string, std::unique_ptr<Snigated>> daemon;
  std::map<std::string, sockaddr_storage> target;
  for (const std::string mode : {"kernel", "userspace"}) {
    const fs::path cfg = write_config(dir, mode, listen_ip, sink_socket.local(),
                                      mode == "kernel" ? interfaces : "");
    daemon[mode] = std::make_unique<Snigated>(edge, o.snigated, cfg, dir / (mode + ".log"));
    const std::string port = daemon[mode]->wait_log(std::regex("listener h3 bound to [0-9.]+:(\\d+)"));
    if (port.empty()) {
      const auto log = read_bytes(dir / (mode + ".log"));
      std::fprintf(stderr, "udp-flow-bench: snigated (%s) did not start; its log:\n%s\n",
                   mode.c_str(), std::string(log.begin(), log.end()).c_str());
      return 1;
    }
    target[mode] = vmtest::udp_address(listen_ip, static_cast<std::uint16_t>(std::stoi(port)));
  }
  if (daemon["kernel"]->wait_log(std::regex("quic: routed flows forwarded by the kernel path")).empty()) {
    std::fprintf(stderr, "udp-flow-bench: snigated has no kernel path here; see %s\n",
                 (dir / "kernel.log").c_str());
    return 1;
  }
  target["direct"] = sink_socket.local();
  target["loop"] = listener.local();

  Sink sink(sink_socket.fd());
  auto others = ksoftirqd_stats();
  for (const auto& [mode, d] : daemon) others.push_back("/proc/" + std::to_string(d->pid()) + "/stat");
  // Each snigated flow opens with a real client Initial (SNI routed by default to the sink);
  // it is routed once the sink has it.
  const auto initial = read_bytes(o.initial);
  for (const std::string mode : {"kernel", "userspace"}) {
    const auto before = sink.datagrams();
    client[mode]->send_to(initial, target[mode]);
    for (int i = 0; i < 100 && sink.datagrams() == before; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (sink.datagrams() == before) {
      std::fprintf(stderr, "udp-flow-bench: snigated (%s) did not route the Initial\n", mode.c_str());
      return 1;
    }
  }
  for (auto& [mode, socket] : client) socket->connect_to(target[mode]);

  const std::vector<std::string> modes = {"direct", "kernel", "userspace", "loop"};
  for (int round = 0; round < rounds; ++round) {
    for (std::size_t k = 0; k < modes.size(); ++k) {
      const std::string& mode = modes[(k + round) % modes.size()];  // each round starts later
      std::optional<UserspaceForwarder> loop;
      if (mode == "loop") loop.emplace(listener.fd(), upstream.fd());
      const Run r = measure(*client[mode], sink, seconds, others);
      std::printf("shape=%s mode=%s round=%d datagrams_s=%.0f cpu_s_per_gib=%.3f "
                  "machine_cpu_s_per_gib=%.3f sent=%llu received=%llu\n",
                  shape.c_str(), mode.c_str(), round, r.datagrams_s, r.cpu_s_per_gib,
                  r.machine_cpu_s_per_gib, static_cast<unsigned long long>(r.sent),
                  static_cast<unsigned long long>(r.received));
      std::fflush(stdout);
    }
  }
  // The flows end with the daemons (drain): their access-log lines say who moved them.
  daemon.clear();
  for (const std::string mode : {"kernel", "userspace"}) {
    const auto line = read_bytes(dir / (mode + ".access.log"));
    std::printf("shape=%s snigated %s access log: %s", shape.c_str(), mode.c_str(),
                line.empty() ? "(none)\n" : std::string(line.begin(), line.end()).c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"UDP flow forwarding: snigated's kernel path and userspace against direct"};
  std::vector<std::string> shapes = {"loopback", "veth"};
  double seconds = 3;
  int rounds = 5;
  Options o;
  app.add_option("--snigated", o.snigated, "the snigated binary")->required();
  app.add_option("--initial", o.initial, "a client's first datagram (tests/data/quic/*.bin)")
      ->required();
  app.add_option("--shapes", shapes, "loopback and/or veth");
  app.add_option("--seconds", seconds, "length of one run");
  app.add_option("--rounds", rounds, "interleaved rounds (the script takes medians)");
  CLI11_PARSE(app, argc, argv);
  if (auto why = vmtest::netns_unavailable(); !why.empty()) {
    std::fprintf(stderr, "udp-flow-bench: %s\n", why.c_str());
    return 2;
  }
  for (const auto& shape : shapes)
    if (int rc = bench(shape, seconds, rounds, o)) return rc;
  return 0;
}
