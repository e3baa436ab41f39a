#include "bans/bpf_ban_map.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "ban.skel.h"
#include "snigate/bpf/ban_abi.h"

namespace snigate::bans {
namespace {

namespace ip = boost::asio::ip;

// A TC filter handle of our own, so detaching removes our filter and nobody else's.
constexpr __u32 kTcHandle = 0x5b4e;
constexpr __u32 kTcPriority = 1;

// The record of ownership: the programs this instance attached, pinned beside its maps. A
// program found on an interface is this instance's (left by a crash, taken over in place)
// only when it is the one pinned in this pin_dir; another snigated's (another pin_dir) is
// never replaced.
constexpr const char* kPinXdp = "/sg_ban_prog_xdp";
constexpr const char* kPinTc = "/sg_ban_prog_tc";

__u32 prog_id(int fd) {
  bpf_prog_info info{};
  __u32 len = sizeof info;
  return fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

// Id of the program pinned at `path` (0: none).
__u32 pinned_prog_id(const std::string& path) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return 0;
  __u32 id = prog_id(fd);
  ::close(fd);
  return id;
}

std::string prog_name(__u32 id) {
  int fd = bpf_prog_get_fd_by_id(id);
  bpf_prog_info info{};
  __u32 len = sizeof info;
  std::string name = fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.name : "";
  if (fd >= 0) ::close(fd);
  return name;
}

// Replaces the pin at `path` with `fd`'s program.
bool pin_prog(int fd, const std::string& path, std::string& error) {
  ::unlink(path.c_str());
  if (bpf_obj_pin(fd, path.c_str()) == 0) return true;
  error = "cannot pin the ban program at " + path + ": " + std::strerror(errno);
  return false;
}

std::string another_instance(const std::string& name, const char* hook, __u32 id) {
  return "cannot enforce bans on " + name + ": its " + hook + " runs program " +
         std::to_string(id) + " of another snigated (one with another [bans] pin_dir); two "
         "daemons cannot share an interface's enforcement, so it is left alone. Give each "
         "daemon its own [bans] interfaces, or stop the other one (if it died, remove its "
         "program: ip link set dev " + name + " xdp off, or tc qdisc del dev " + name +
         " clsact)";
}

int libbpf_to_spdlog(enum libbpf_print_level level, const char* format, va_list args) {
  char buffer[1024];
  int n = std::vsnprintf(buffer, sizeof buffer, format, args);
  std::string_view line(buffer, n < 0 ? 0 : std::min<std::size_t>(n, sizeof buffer - 1));
  while (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  switch (level) {
    case LIBBPF_WARN: spdlog::warn("{}", line); break;  // libbpf prefixes its own lines
    case LIBBPF_INFO: spdlog::info("{}", line); break;
    default: spdlog::debug("{}", line); break;
  }
  return n;
}

std::string sys_error(int err) { return std::strerror(err < 0 ? -err : err); }

snigate_ban_key_v4 key_v4(const net::Prefix& p) {
  snigate_ban_key_v4 key{};
  key.prefixlen = p.length();
  std::memcpy(key.addr, p.bytes().data(), sizeof key.addr);
  return key;
}

snigate_ban_key_v6 key_v6(const net::Prefix& p) {
  snigate_ban_key_v6 key{};
  key.prefixlen = p.length();
  std::memcpy(key.addr, p.bytes().data(), sizeof key.addr);
  return key;
}

net::Prefix prefix_of(const snigate_ban_key_v4& key, unsigned length) {
  ip::address_v4::bytes_type b;
  std::memcpy(b.data(), key.addr, b.size());
  return net::Prefix::covering(ip::address_v4(b), length);
}

net::Prefix prefix_of(const snigate_ban_key_v6& key, unsigned length) {
  ip::address_v6::bytes_type b;
  std::memcpy(b.data(), key.addr, b.size());
  return net::Prefix::covering(ip::address_v6(b), length);
}

// Walks one trie with get_next_key; the kernel hands keys out in trie order.
template <typename Key>
void collect(int fd, std::vector<MapBan>& out) {
  Key key{};
  Key next{};
  const void* cursor = nullptr;
  while (bpf_map_get_next_key(fd, cursor, &next) == 0) {
    snigate_ban_value value{};
    if (bpf_map_lookup_elem(fd, &next, &value) == 0)
      out.push_back({prefix_of(next, next.prefixlen), value.expires_ns, value.drops});
    key = next;
    cursor = &key;
  }
}

const char* mode_name(int mode) {
  switch (mode) {
    case 0: return "xdp (native)";
    case 1: return "xdp (generic)";
    default: return "tc ingress";
  }
}

}  // namespace

std::unique_ptr<BpfBanMap> BpfBanMap::open(const std::string& pin_dir,
                                           const std::vector<std::string>& interfaces,
                                           std::string& error) {
  static std::once_flag route_log;
  std::call_once(route_log, [] { libbpf_set_print(libbpf_to_spdlog); });

  std::error_code ec;
  std::filesystem::create_directories(pin_dir, ec);
  if (ec) {
    error = "cannot create the ban pin directory " + pin_dir + ": " + ec.message() +
            " (is bpffs mounted at /sys/fs/bpf? mount -t bpf bpf /sys/fs/bpf)";
    return nullptr;
  }
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir.c_str());
  ban_bpf* skel = ban_bpf__open_opts(&opts);
  if (!skel) {
    error = "cannot open the ban BPF object: " + sys_error(errno);
    return nullptr;
  }
  std::unique_ptr<BpfBanMap> map(new BpfBanMap(skel));
  if (int err = ban_bpf__load(skel)) {
    error = "cannot load the ban program with maps pinned in " + pin_dir + ": " + sys_error(err) +
            ". If pins there were made by another snigate version (libbpf reuses a pin only when "
            "type, key, value and size match), remove them (rm " + pin_dir +
            "/sg_ban_*) or point [bans] pin_dir at a new directory; also check CAP_BPF and "
            "that the kernel has BPF LPM tries.";
    return nullptr;
  }
  // The pins are found by map name: make sure the object and the ABI header agree.
  if (std::strcmp(bpf_map__name(skel->maps.sg_ban_v4), SNIGATE_BAN_MAP_V4) != 0 ||
      std::strcmp(bpf_map__name(skel->maps.sg_ban_v6), SNIGATE_BAN_MAP_V6) != 0 ||
      std::strcmp(bpf_map__name(skel->maps.sg_ban_stats), SNIGATE_BAN_MAP_STATS) != 0) {
    error = "ban BPF object and ban_abi.h disagree on map names; rebuild snigate";
    return nullptr;
  }
  map->fd_v4_ = bpf_map__fd(skel->maps.sg_ban_v4);
  map->fd_v6_ = bpf_map__fd(skel->maps.sg_ban_v6);
  map->fd_stats_ = bpf_map__fd(skel->maps.sg_ban_stats);
  // What a previous run of this instance left attached is ours to take over; then the pins
  // name this run's programs.
  map->pin_dir_ = pin_dir;
  map->previous_xdp_ = pinned_prog_id(pin_dir + kPinXdp);
  map->previous_tc_ = pinned_prog_id(pin_dir + kPinTc);
  if (!interfaces.empty() &&
      (!pin_prog(map->xdp_prog_fd(), pin_dir + kPinXdp, error) ||
       !pin_prog(map->tc_prog_fd(), pin_dir + kPinTc, error)))
    return nullptr;
  for (const auto& name : interfaces)
    if (!map->attach(name, error)) return nullptr;
  return map;
}

BpfBanMap::~BpfBanMap() {
  for (const auto& a : attached_) detach(a);
  // A clean exit attaches nothing: no record of ownership is left behind.
  if (!pin_dir_.empty() && !attached_.empty()) {
    ::unlink((pin_dir_ + kPinXdp).c_str());
    ::unlink((pin_dir_ + kPinTc).c_str());
  }
  ban_bpf__destroy(skel_);
}

int BpfBanMap::xdp_prog_fd() const { return bpf_program__fd(skel_->progs.snigate_ban_xdp); }
int BpfBanMap::tc_prog_fd() const { return bpf_program__fd(skel_->progs.snigate_ban_tc); }

bool BpfBanMap::attach(const std::string& name, std::string& error) {
  const int ifindex = static_cast<int>(if_nametoindex(name.c_str()));
  if (ifindex == 0) {
    error = "[bans] interfaces: no interface named '" + name + "' (see `ip link`)";
    return false;
  }
  const int xdp_fd = xdp_prog_fd();
  // Replace a program only when this instance left it (a crash); never another snigated's,
  // and never someone else's XDP program: TC enforces beside a foreign one instead.
  __u32 flags_common = XDP_FLAGS_UPDATE_IF_NOEXIST;
  __u32 existing = 0;
  if (bpf_xdp_query_id(ifindex, 0, &existing) == 0 && existing) {
    if (existing == previous_xdp_) {
      flags_common = 0;
    } else if (prog_name(existing) == "snigate_ban_xdp") {
      error = another_instance(name, "XDP hook", existing);
      return false;
    }
  }
  const std::pair<Mode, __u32> tries[] = {{Mode::xdp_native, XDP_FLAGS_DRV_MODE},
                                          {Mode::xdp_generic, XDP_FLAGS_SKB_MODE}};
  std::string why;
  for (auto [mode, flags] : tries) {
    int err = bpf_xdp_attach(ifindex, xdp_fd, flags | flags_common, nullptr);
    if (err == 0) {
      attached_.push_back({name, ifindex, mode, false});
      spdlog::info("bans: enforcing on {} with {}", name, mode_name(static_cast<int>(mode)));
      return true;
    }
    why += std::string(why.empty() ? "" : ", ") + mode_name(static_cast<int>(mode)) + ": " +
           sys_error(err);
  }
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST) {
    error = "cannot enforce bans on " + name + ": " + why + ", tc: " + sys_error(err);
    return false;
  }
  const bool created_clsact = err == 0;
  // Our handle taken: ours from a crash is replaced, another snigated's is left alone.
  LIBBPF_OPTS(bpf_tc_opts, query, .handle = kTcHandle, .priority = kTcPriority);
  __u32 tc_flags = 0;
  if (bpf_tc_query(&hook, &query) == 0 && query.prog_id) {
    if (query.prog_id != previous_tc_) {
      error = another_instance(name, "tc ingress filter", query.prog_id);
      return false;
    }
    tc_flags = BPF_TC_F_REPLACE;
  }
  LIBBPF_OPTS(bpf_tc_opts, tc, .prog_fd = tc_prog_fd(),
              .flags = tc_flags, .handle = kTcHandle, .priority = kTcPriority);
  if ((err = bpf_tc_attach(&hook, &tc))) {
    error = "cannot enforce bans on " + name + ": " + why + ", tc: " + sys_error(err);
    return false;
  }
  attached_.push_back({name, ifindex, Mode::tc, created_clsact});
  spdlog::warn("bans: XDP refused on {} ({}); enforcing with tc ingress", name, why);
  return true;
}

void BpfBanMap::detach(const Attachment& a) {
  if (a.mode == Mode::tc) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a.ifindex, .attach_point = BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, tc, .handle = kTcHandle, .priority = kTcPriority);
    bpf_tc_detach(&hook, &tc);
    // The clsact qdisc goes too when this daemon added it (libbpf removes the qdisc when
    // both attach points are named).
    if (a.created_clsact) {
      LIBBPF_OPTS(bpf_tc_hook, qdisc, .ifindex = a.ifindex,
                  .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
      if (int err = bpf_tc_hook_destroy(&qdisc))
        spdlog::warn("bans: removing the clsact qdisc from {}: {}", a.name, sys_error(err));
    }
    return;
  }
  // old_prog_fd: detach only if the program there is still this one (XDP_FLAGS_REPLACE).
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = xdp_prog_fd());
  __u32 flags = a.mode == Mode::xdp_native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
  if (int err = bpf_xdp_detach(a.ifindex, flags, &opts))
    spdlog::warn("bans: detaching XDP from {}: {}", a.name, sys_error(err));
}

bool BpfBanMap::put(const MapBan& ban, std::string& error) {
  snigate_ban_value value{};
  value.expires_ns = ban.expires_ns;
  value.drops = ban.drops;
  value.prefixlen = ban.prefix.length();
  int err;
  if (ban.prefix.is_v4()) {
    auto key = key_v4(ban.prefix);
    err = bpf_map_update_elem(fd_v4_, &key, &value, BPF_ANY);
  } else {
    auto key = key_v6(ban.prefix);
    err = bpf_map_update_elem(fd_v6_, &key, &value, BPF_ANY);
  }
  if (err == 0) return true;
  error = "the kernel refused the ban map update: " + sys_error(errno);
  if (errno == ENOSPC || errno == E2BIG)
    error += " (the " + std::string(ban.prefix.is_v4() ? "IPv4" : "IPv6") +
             " ban map is full; ban wider prefixes or lift old bans)";
  return false;
}

bool BpfBanMap::erase(const net::Prefix& prefix) {
  if (prefix.is_v4()) {
    auto key = key_v4(prefix);
    return bpf_map_delete_elem(fd_v4_, &key) == 0;
  }
  auto key = key_v6(prefix);
  return bpf_map_delete_elem(fd_v6_, &key) == 0;
}

std::optional<MapBan> BpfBanMap::longest_match(const net::Prefix& key) const {
  snigate_ban_value value{};
  if (key.is_v4()) {
    auto k = key_v4(key);
    if (bpf_map_lookup_elem(fd_v4_, &k, &value) != 0) return std::nullopt;
    return MapBan{prefix_of(k, value.prefixlen), value.expires_ns, value.drops};
  }
  auto k = key_v6(key);
  if (bpf_map_lookup_elem(fd_v6_, &k, &value) != 0) return std::nullopt;
  return MapBan{prefix_of(k, value.prefixlen), value.expires_ns, value.drops};
}

std::vector<MapBan> BpfBanMap::entries() const {
  std::vector<MapBan> out;
  collect<snigate_ban_key_v4>(fd_v4_, out);
  collect<snigate_ban_key_v6>(fd_v6_, out);
  return out;
}

MapTotals BpfBanMap::totals() const {
  const int cpus = libbpf_num_possible_cpus();
  std::vector<snigate_ban_stats> per_cpu(cpus > 0 ? cpus : 1);
  __u32 zero = 0;
  MapTotals t;
  if (bpf_map_lookup_elem(fd_stats_, &zero, per_cpu.data()) != 0) return t;
  for (const auto& s : per_cpu) {
    t.packets += s.packets;
    t.dropped_v4 += s.dropped_v4;
    t.dropped_v6 += s.dropped_v6;
    t.expired_hits += s.expired_hits;
  }
  return t;
}

// Asked of the kernel each time, not remembered: if someone replaced or removed our program
// since, this says so instead of claiming enforcement that no longer runs.
std::vector<std::string> BpfBanMap::enforcement() const {
  std::vector<std::string> out;
  for (const auto& a : attached_) {
    __u32 ours = 0, there = 0;
    if (a.mode == Mode::tc) {
      ours = prog_id(tc_prog_fd());
      LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a.ifindex, .attach_point = BPF_TC_INGRESS);
      LIBBPF_OPTS(bpf_tc_opts, query, .handle = kTcHandle, .priority = kTcPriority);
      if (bpf_tc_query(&hook, &query) == 0) there = query.prog_id;
    } else {
      ours = prog_id(xdp_prog_fd());
      bpf_xdp_query_id(a.ifindex, a.mode == Mode::xdp_native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE,
                       &there);
    }
    std::string line = a.name + ": " + mode_name(static_cast<int>(a.mode));
    if (there != ours)
      line += there ? " NOT ENFORCING: replaced by program " + std::to_string(there)
                    : " NOT ENFORCING: detached by someone else";
    out.push_back(std::move(line));
  }
  return out;
}

}  // namespace snigate::bans
