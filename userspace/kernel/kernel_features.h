#pragma once
// What this kernel offers snigate's BPF programs, probed once at start (and by --check) so
// the relay and the ban enforcement are chosen from facts, and the reason for a fallback
// names the missing piece instead of a verifier log.
#include <string>
#include <vector>

namespace snigate::kernel {

// One capability the programs need, as a yes/no with the probe's own words.
struct Feature {
  std::string name;  // e.g. "sockhash maps", "bpf_probe_read_kernel in sk_skb"
  bool present = false;
  std::string detail;  // why not, when absent
};

struct KernelFeatures {
  std::string release;  // uname -r
  bool btf = false;     // /sys/kernel/btf/vmlinux: the relay's CO-RE reads need it
  std::vector<std::string> capabilities;  // the BPF-relevant ones held (effective set)
  std::vector<Feature> sockmap_relay;     // what relay.bpf.c needs
  std::vector<Feature> ban_programs;      // what ban.bpf.c needs
  std::vector<Feature> udp_flow_programs; // what udp_flow.bpf.c needs (QUIC's kernel path)
  bool splice = false;
  std::string splice_detail;

  // The first missing piece of a group, or empty when all are present.
  static std::string missing(const std::vector<Feature>& group);
};

KernelFeatures probe_kernel();

// Several lines, each starting "kernel:" or two spaces, for --check and the start-up log.
std::string format_report(const KernelFeatures& k);

}  // namespace snigate::kernel
