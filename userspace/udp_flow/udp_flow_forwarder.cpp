#include "udp_flow/udp_flow_forwarder.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "snigate/bpf/udp_flow_abi.h"
#include "udp_flow.skel.h"

namespace snigate::udp_flow {
namespace {

// Our own TC filter handle, so detaching removes this filter and nobody else's; priority 2
// runs after the ban program's TC fallback (handle 0x5b4e, priority 1).
constexpr __u32 kTcHandle = 0x5b46;
constexpr __u32 kTcPriority = 2;

std::string sys_error(int err) { return std::strerror(err < 0 ? -err : err); }

struct Endpoint {
  __u8 family = 0;  // SNIGATE_UDP_FLOW_V4 / _V6
  std::array<__u8, 16> addr{};
  __be16 port = 0;
};

// AF_INET, or AF_INET6 (a v4-mapped address as IPv4).
std::optional<Endpoint> endpoint_of(const sockaddr_storage& ss) {
  Endpoint e;
  if (ss.ss_family == AF_INET) {
    const auto& sin = reinterpret_cast<const sockaddr_in&>(ss);
    e.family = SNIGATE_UDP_FLOW_V4;
    std::memcpy(e.addr.data(), &sin.sin_addr, 4);
    e.port = sin.sin_port;
    return e;
  }
  if (ss.ss_family != AF_INET6) return std::nullopt;
  const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(ss);
  e.port = sin6.sin6_port;
  if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
    e.family = SNIGATE_UDP_FLOW_V4;
    std::memcpy(e.addr.data(), sin6.sin6_addr.s6_addr + 12, 4);
  } else {
    e.family = SNIGATE_UDP_FLOW_V6;
    std::memcpy(e.addr.data(), &sin6.sin6_addr, 16);
  }
  return e;
}

bool wildcard(const Endpoint& e) {
  const std::size_t n = e.family == SNIGATE_UDP_FLOW_V4 ? 4 : 16;
  for (std::size_t i = 0; i < n; ++i)
    if (e.addr[i]) return false;
  return true;
}

// The route query's form of an endpoint (port left out).
sockaddr_storage sockaddr_of(const Endpoint& e) {
  sockaddr_storage ss{};
  if (e.family == SNIGATE_UDP_FLOW_V4) {
    auto& sin = reinterpret_cast<sockaddr_in&>(ss);
    sin.sin_family = AF_INET;
    std::memcpy(&sin.sin_addr, e.addr.data(), 4);
  } else {
    auto& sin6 = reinterpret_cast<sockaddr_in6&>(ss);
    sin6.sin6_family = AF_INET6;
    std::memcpy(&sin6.sin6_addr, e.addr.data(), 16);
  }
  return ss;
}

snigate_udp_flow_key key_of(const Endpoint& from, const Endpoint& to) {
  snigate_udp_flow_key k{};
  std::memcpy(k.saddr, from.addr.data(), sizeof k.saddr);
  std::memcpy(k.daddr, to.addr.data(), sizeof k.daddr);
  k.sport = from.port;
  k.dport = to.port;
  k.family = from.family;
  return k;
}

// The two directions of a flow: [0] the client's datagrams, [1] the backend's.
struct Directions {
  Endpoint client, listener, upstream, backend;
  snigate_udp_flow_key in() const { return key_of(client, listener); }
  snigate_udp_flow_key out() const { return key_of(backend, upstream); }
};

std::optional<Directions> directions_of(const UdpFlowSpec& f, std::string& why_not) {
  auto c = endpoint_of(f.client), l = endpoint_of(f.listener), u = endpoint_of(f.upstream),
       b = endpoint_of(f.backend);
  if (!c || !l || !u || !b) {
    why_not = "an address of the flow is neither IPv4 nor IPv6";
    return std::nullopt;
  }
  if (c->family != b->family || l->family != c->family || u->family != b->family) {
    why_not = "client and backend differ in address family (the kernel path rewrites "
              "addresses in place, it cannot translate IPv4 and IPv6)";
    return std::nullopt;
  }
  if (wildcard(*l) || wildcard(*u)) {
    why_not = "the listener or upstream address is a wildcard; the kernel path needs the "
              "concrete local address each side's datagrams arrive at";
    return std::nullopt;
  }
  return Directions{*c, *l, *u, *b};
}

}  // namespace

UdpFlowForwarder::UdpFlowForwarder(udp_flow_bpf* skel, RouteQuery routes)
    : skel_(skel), routes_(std::move(routes)) {}

std::unique_ptr<UdpFlowForwarder> UdpFlowForwarder::open(
    const std::vector<std::string>& interfaces, std::string& why_not) {
  auto routes = RouteQuery::open(why_not);
  if (!routes) return nullptr;
  udp_flow_bpf* skel = udp_flow_bpf__open_and_load();
  if (!skel) {
    why_not = "cannot load the UDP flow program: " + sys_error(errno) +
              " (it needs CAP_BPF and CAP_NET_ADMIN, and a kernel with bpf_redirect_neigh, 5.10 "
              "or later)";
    return nullptr;
  }
  std::unique_ptr<UdpFlowForwarder> fwd(new UdpFlowForwarder(skel, std::move(*routes)));
  fwd->map_fd_ = bpf_map__fd(skel->maps.sg_udp_flows);
  if (interfaces.empty()) {
    why_not = "no interfaces to attach the UDP flow program to";
    return nullptr;
  }
  for (const auto& name : interfaces)
    if (!fwd->attach(name, why_not)) return nullptr;
  return fwd;
}

UdpFlowForwarder::~UdpFlowForwarder() {
  for (const auto& a : attached_) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a.ifindex, .attach_point = BPF_TC_INGRESS);
    LIBBPF_OPTS(bpf_tc_opts, tc, .handle = kTcHandle, .priority = kTcPriority);
    if (int err = bpf_tc_detach(&hook, &tc))
      spdlog::warn("udp flows: detaching from {}: {}", a.name, sys_error(err));
  }
  udp_flow_bpf__destroy(skel_);
}

int UdpFlowForwarder::prog_fd() const { return bpf_program__fd(skel_->progs.snigate_udp_flow); }

bool UdpFlowForwarder::attach(const std::string& name, std::string& why_not) {
  const int ifindex = static_cast<int>(if_nametoindex(name.c_str()));
  if (ifindex == 0) {
    why_not = "no interface named '" + name + "' (see `ip link`)";
    return false;
  }
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST) {
    why_not = "cannot add a clsact qdisc to " + name + ": " + sys_error(err);
    return false;
  }
  LIBBPF_OPTS(bpf_tc_opts, tc, .prog_fd = prog_fd(), .handle = kTcHandle,
              .priority = kTcPriority);
  err = bpf_tc_attach(&hook, &tc);
  if (err == -EEXIST) {
    // A filter at our handle is the one a crashed run left: replace it, and its flows with it.
    spdlog::warn("udp flows: replacing the UDP flow filter an earlier run left on {}", name);
    tc.flags = BPF_TC_F_REPLACE;
    tc.prog_id = 0;
    err = bpf_tc_attach(&hook, &tc);
  }
  if (err) {
    why_not = "cannot attach the UDP flow program to " + name + " (tc ingress): " + sys_error(err);
    return false;
  }
  attached_.push_back({name, ifindex});
  return true;
}

bool UdpFlowForwarder::add(const UdpFlowSpec& flow, std::string& why_not) {
  auto d = directions_of(flow, why_not);
  if (!d) return false;
  // Each direction leaves by the interface the routing table names for its new destination,
  // as the edge's own socket's datagram would.
  auto to_backend = routes_.lookup(sockaddr_of(d->upstream), sockaddr_of(d->backend), why_not);
  if (!to_backend) return false;
  auto to_client = routes_.lookup(sockaddr_of(d->listener), sockaddr_of(d->client), why_not);
  if (!to_client) return false;

  auto value_of = [](const Endpoint& from, const Endpoint& to, const Route& route) {
    snigate_udp_flow_value v{};
    std::memcpy(v.saddr, from.addr.data(), sizeof v.saddr);
    std::memcpy(v.daddr, to.addr.data(), sizeof v.daddr);
    v.sport = from.port;
    v.dport = to.port;
    v.oif = route.oif;
    v.flags = route.local ? SNIGATE_UDP_FLOW_LOCAL : 0;
    return v;
  };
  const auto in_key = d->in(), out_key = d->out();
  const auto in_value = value_of(d->upstream, d->backend, *to_backend);
  const auto out_value = value_of(d->listener, d->client, *to_client);
  if (bpf_map_update_elem(map_fd_, &in_key, &in_value, BPF_ANY) != 0 ||
      bpf_map_update_elem(map_fd_, &out_key, &out_value, BPF_ANY) != 0) {
    why_not = "the kernel refused the flow map update: " + sys_error(errno) +
              (errno == E2BIG || errno == ENOMEM
                   ? " (" + std::to_string(SNIGATE_UDP_FLOW_MAX_FLOWS) + " flows in the kernel)"
                   : std::string());
    bpf_map_delete_elem(map_fd_, &in_key);
    return false;
  }
  return true;
}

void UdpFlowForwarder::remove(const UdpFlowSpec& flow) {
  std::string ignored;
  auto d = directions_of(flow, ignored);
  if (!d) return;
  const auto in_key = d->in(), out_key = d->out();
  bpf_map_delete_elem(map_fd_, &in_key);
  bpf_map_delete_elem(map_fd_, &out_key);
}

std::optional<FlowCounters> UdpFlowForwarder::counters(const UdpFlowSpec& flow) const {
  std::string ignored;
  auto d = directions_of(flow, ignored);
  if (!d) return std::nullopt;
  const auto in_key = d->in(), out_key = d->out();
  snigate_udp_flow_value in{}, out{};
  if (bpf_map_lookup_elem(map_fd_, &in_key, &in) != 0 ||
      bpf_map_lookup_elem(map_fd_, &out_key, &out) != 0)
    return std::nullopt;
  return FlowCounters{in.packets, in.bytes, out.packets, out.bytes,
                      std::max(in.last_seen_ns, out.last_seen_ns)};
}

}  // namespace snigate::udp_flow
