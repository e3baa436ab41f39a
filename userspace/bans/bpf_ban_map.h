#pragma once
// The ban tries as pinned BPF maps, and the XDP (or TC ingress) program that enforces them on
// the configured interfaces. Loading reuses the pins under pin_dir when their attributes
// match, and fails with advice when an incompatible pin is in the way.
//
// Exit paths, decided so that no exit lifts a ban by accident and no clean exit leaves a
// filter behind:
// - The maps stay pinned on every exit: the next start reconciles them with the store
//   instead of rebuilding them (no storm, drop counters kept). Only a reboot, or an operator
//   removing the pins, empties them; the store then refills them.
// - A clean exit (this object destroyed) detaches the program, and only if it is still ours
//   (XDP_FLAGS_REPLACE with our fd; our own TC handle), so stopping snigate leaves the
//   interface as it found it.
// - A crash or SIGKILL leaves the netlink-attached program in place, still reading the
//   pinned maps: bans keep holding while the daemon is down. The programs are pinned in
//   pin_dir too, as the record of who attached them: the next start of this instance finds
//   its own program on the interface and replaces it in place.
// - Another snigated (another pin_dir) on the same interface is refused with an error, not
//   taken over: its program is not the one pinned here. A TC qdisc (clsact) this daemon
//   added is removed on a clean exit.
// - XDP: native first, then generic (skb). An XDP program that is not snigate's is never
//   replaced; TC ingress (clsact) enforces beside it instead.
#include <memory>
#include <string>
#include <vector>

#include <linux/types.h>

#include "bans/ban_map.h"

struct ban_bpf;

namespace snigate::bans {

class BpfBanMap final : public BanMap {
 public:
  static std::unique_ptr<BpfBanMap> open(const std::string& pin_dir,
                                         const std::vector<std::string>& interfaces,
                                         std::string& error);
  ~BpfBanMap() override;
  BpfBanMap(const BpfBanMap&) = delete;
  BpfBanMap& operator=(const BpfBanMap&) = delete;

  bool put(const MapBan& ban, std::string& error) override;
  bool erase(const net::Prefix& prefix) override;
  std::optional<MapBan> longest_match(const net::Prefix& key) const override;
  std::vector<MapBan> entries() const override;
  MapTotals totals() const override;
  std::vector<std::string> enforcement() const override;

  // The loaded XDP and TC programs, for BPF_PROG_TEST_RUN in the bench and the vm-tests.
  int xdp_prog_fd() const;
  int tc_prog_fd() const;

 private:
  enum class Mode { xdp_native, xdp_generic, tc };
  struct Attachment {
    std::string name;
    int ifindex = 0;
    Mode mode = Mode::xdp_native;
    bool created_clsact = false;  // tc: this daemon added the qdisc, so it removes it
  };
  explicit BpfBanMap(ban_bpf* skel) : skel_(skel) {}
  bool attach(const std::string& name, std::string& error);
  void detach(const Attachment& a);

  ban_bpf* skel_;
  int fd_v4_ = -1;
  int fd_v6_ = -1;
  int fd_stats_ = -1;
  std::vector<Attachment> attached_;
  std::string pin_dir_;
  __u32 previous_xdp_ = 0;  // programs a crashed run of this instance left attached
  __u32 previous_tc_ = 0;
};

}  // namespace snigate::bans
