#include "kernel/kernel_features.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/capability.h>

#include "relay/splice_relay.h"

namespace snigate::kernel {

namespace {

// Whether bpf() works for this process at all: libbpf's probes answer "absent" for a
// feature they were not allowed to try, which must not read as a kernel without it.
int bpf_denied() {
  const int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, nullptr, 4, 4, 1, nullptr);
  if (fd >= 0) {
    ::close(fd);
    return 0;
  }
  return errno;
}

class Prober {
 public:
  Prober() : denied_(bpf_denied()) {}

  Feature prog(const char* name, bpf_prog_type type, const char* since) const {
    return answer(name, [&] { return libbpf_probe_bpf_prog_type(type, nullptr); }, since);
  }
  Feature map(const char* name, bpf_map_type type, const char* since) const {
    return answer(name, [&] { return libbpf_probe_bpf_map_type(type, nullptr); }, since);
  }
  Feature helper(const char* name, bpf_prog_type type, bpf_func_id id, const char* since) const {
    return answer(name, [&] { return libbpf_probe_bpf_helper(type, id, nullptr); }, since);
  }

 private:
  // libbpf's probes answer 1 (yes), 0 (no) or -errno (could not ask).
  template <class Probe>
  Feature answer(std::string name, Probe probe, const char* since) const {
    Feature f{std::move(name), false, {}};
    if (denied_ != 0) {
      f.detail = std::string("bpf() refused: ") + std::strerror(denied_) +
                 (denied_ == EPERM ? " (needs CAP_BPF, or root)" : "");
      return f;
    }
    const int rc = probe();
    f.present = rc == 1;
    if (rc == 0)
      f.detail = since ? std::string("not in this kernel (Linux ") + since + ")"
                       : "not in this kernel";
    else if (rc < 0)
      f.detail = std::string("cannot probe: ") + std::strerror(-rc);
    return f;
  }

  int denied_;
};

// The effective capability set from /proc (no libcap needed for five bits).
std::vector<std::string> effective_capabilities() {
  std::ifstream status("/proc/self/status");
  std::string line;
  std::uint64_t eff = 0;
  while (std::getline(status, line))
    if (line.rfind("CapEff:", 0) == 0) eff = std::stoull(line.substr(7), nullptr, 16);
  std::vector<std::string> held;
  for (auto [bit, name] : {std::pair{CAP_BPF, "CAP_BPF"}, std::pair{CAP_PERFMON, "CAP_PERFMON"},
                           std::pair{CAP_NET_ADMIN, "CAP_NET_ADMIN"},
                           std::pair{CAP_SYS_ADMIN, "CAP_SYS_ADMIN"},
                           std::pair{CAP_NET_BIND_SERVICE, "CAP_NET_BIND_SERVICE"}})
    if (eff & (std::uint64_t{1} << bit)) held.push_back(name);
  return held;
}

std::string group_line(const char* what, const std::vector<Feature>& group) {
  std::string names;
  for (const auto& f : group) names += (names.empty() ? "" : ", ") + f.name;
  const std::string gap = KernelFeatures::missing(group);
  return std::string("  ") + what + ": " + (gap.empty() ? "yes (" + names + ")" : "no: " + gap) +
         "\n";
}

}  // namespace

std::string KernelFeatures::missing(const std::vector<Feature>& group) {
  for (const auto& f : group)
    if (!f.present) return f.name + ": " + f.detail;
  return {};
}

KernelFeatures probe_kernel() {
  KernelFeatures k;
  utsname u{};
  if (::uname(&u) == 0) k.release = std::string(u.sysname) + " " + u.release + " " + u.machine;
  k.btf = ::access("/sys/kernel/btf/vmlinux", R_OK) == 0;
  k.capabilities = effective_capabilities();

  const Prober p;
  auto holds = [&k](const char* cap) {
    return std::find(k.capabilities.begin(), k.capabilities.end(), cap) != k.capabilities.end();
  };
  Feature btf{"kernel BTF", k.btf, k.btf ? "" : "no /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)"};
  k.sockmap_relay = {
      btf,
      p.map("sockhash maps", BPF_MAP_TYPE_SOCKHASH, "4.18"),
      p.prog("sk_skb programs", BPF_PROG_TYPE_SK_SKB, "4.14"),
      p.helper("bpf_sk_redirect_hash", BPF_PROG_TYPE_SK_SKB, BPF_FUNC_sk_redirect_hash, "4.18"),
      p.helper("bpf_skb_adjust_room in sk_skb", BPF_PROG_TYPE_SK_SKB, BPF_FUNC_skb_adjust_room,
             nullptr),
      p.helper("bpf_skc_to_tcp_sock", BPF_PROG_TYPE_SK_SKB, BPF_FUNC_skc_to_tcp_sock, "5.9"),
      p.helper("bpf_probe_read_kernel in sk_skb", BPF_PROG_TYPE_SK_SKB,
               BPF_FUNC_probe_read_kernel, "5.5"),
      // The pause: the verdict wakes the daemon through a ring buffer (relay_abi.h).
      p.map("ring buffer maps", BPF_MAP_TYPE_RINGBUF, "5.8"),
      p.helper("bpf_ringbuf_output in sk_skb", BPF_PROG_TYPE_SK_SKB, BPF_FUNC_ringbuf_output,
               "5.8"),
      // The verifier allows that helper only with CAP_PERFMON (libbpf's probe cannot tell):
      // the verdict reads the skb's TCP sequence to cut repeated heads (relay.bpf.c).
      Feature{"CAP_PERFMON", holds("CAP_PERFMON") || holds("CAP_SYS_ADMIN"),
              "not held (the verdict reads kernel memory: TCP sequence numbers)"},
  };
  k.ban_programs = {
      p.prog("XDP programs", BPF_PROG_TYPE_XDP, "4.8"),
      p.prog("TC programs", BPF_PROG_TYPE_SCHED_CLS, "4.1"),
      p.map("LPM trie maps", BPF_MAP_TYPE_LPM_TRIE, "4.11"),
      p.helper("bpf_ktime_get_boot_ns", BPF_PROG_TYPE_XDP, BPF_FUNC_ktime_get_boot_ns, "5.8"),
  };
  k.udp_flow_programs = {
      p.prog("TC programs", BPF_PROG_TYPE_SCHED_CLS, "4.1"),
      p.map("hash maps", BPF_MAP_TYPE_HASH, "3.19"),
      p.helper("bpf_redirect_neigh", BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_redirect_neigh, "5.10"),
      p.helper("bpf_ktime_get_boot_ns in TC", BPF_PROG_TYPE_SCHED_CLS, BPF_FUNC_ktime_get_boot_ns,
               "5.8"),
  };
  k.splice = relay::SpliceRelay::available(&k.splice_detail);
  return k;
}

std::string format_report(const KernelFeatures& k) {
  std::ostringstream out;
  std::string caps;
  for (const auto& c : k.capabilities) caps += (caps.empty() ? "" : " ") + c;
  out << "kernel: " << k.release << "; capabilities: " << (caps.empty() ? "none" : caps) << "\n"
      << group_line("sockmap", k.sockmap_relay) << group_line("ban programs", k.ban_programs)
      << group_line("udp flow programs", k.udp_flow_programs)
      << "  splice: " << (k.splice ? "yes" : "no: " + k.splice_detail) << "\n";
  return out.str();
}

}  // namespace snigate::kernel
