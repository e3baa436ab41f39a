#pragma once
// The kernel path for routed UDP flows (bpf/udp_flow.bpf.c, layout in
// include/snigate/bpf/udp_flow_abi.h): once a flow is routed, its datagrams are rewritten and
// sent on at TC ingress, both ways, and the edge's sockets see none of them. Userspace
// forwarding stays the fallback: open() returns nullptr with the reason when the kernel or
// the attachment refuses, add() returns false with the reason for a flow it cannot take.
//
// Attachment: TC ingress (clsact) of every interface the flows' datagrams arrive on (the
// listener's and the backends'; "lo" for local ones), filter handle 0x5b46 at priority 2,
// after the ban filter's priority 1. A clean exit (destruction) detaches the filters, and
// with the program goes the map and every flow in it. After a crash the filters stay and
// keep forwarding the flows they had until the next open() replaces them with an empty map.
// An empty clsact qdisc is left in place: another filter (the bans' TC fallback) may share it.
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "udp_flow/route_query.h"

struct udp_flow_bpf;

namespace snigate::udp_flow {

// What the edge's userspace path does for one routed flow. AF_INET or AF_INET6 (a v4-mapped
// AF_INET6 address counts as IPv4); all four of one family. `listener` and `upstream` are
// the concrete local addresses (the one the client sent to, getsockname of the connected
// upstream socket), never a wildcard.
struct UdpFlowSpec {
  sockaddr_storage client{};    // client address:port as seen on the listener
  sockaddr_storage listener{};  // the listener's address:port (replies leave from it)
  sockaddr_storage upstream{};  // local address:port of the flow's upstream socket (kept open)
  sockaddr_storage backend{};   // backend address:port
};

struct FlowCounters {
  std::uint64_t packets_in = 0;  // client -> backend datagrams the kernel moved
  std::uint64_t bytes_in = 0;    // their UDP payload bytes
  std::uint64_t packets_out = 0;  // backend -> client
  std::uint64_t bytes_out = 0;
  // CLOCK_BOOTTIME ns of the last datagram either way; 0 = none moved yet.
  std::uint64_t last_seen_ns = 0;
};

class UdpFlowForwarder {
 public:
  // Loads the program and attaches it to `interfaces` (names) in the calling thread's network
  // namespace, where the route queries of add() are asked too.
  static std::unique_ptr<UdpFlowForwarder> open(const std::vector<std::string>& interfaces,
                                                std::string& why_not);
  ~UdpFlowForwarder();
  UdpFlowForwarder(const UdpFlowForwarder&) = delete;
  UdpFlowForwarder& operator=(const UdpFlowForwarder&) = delete;

  // Installs both directions; from then on the flow's datagrams bypass the edge's sockets.
  // false and `why_not` when the flow cannot go through the kernel (families differ, no
  // route, a wildcard address, the map is full): keep forwarding it in userspace.
  bool add(const UdpFlowSpec& flow, std::string& why_not);
  // Removes both directions (the counters go with them: read them first); datagrams reach
  // the edge's sockets again.
  void remove(const UdpFlowSpec& flow);
  // What the kernel moved for the flow since add(); nullopt when it is not installed.
  std::optional<FlowCounters> counters(const UdpFlowSpec& flow) const;

  // The loaded program, for BPF_PROG_TEST_RUN in tests and the bench.
  int prog_fd() const;

 private:
  struct Attachment {
    std::string name;
    int ifindex = 0;
  };
  UdpFlowForwarder(udp_flow_bpf* skel, RouteQuery routes);
  bool attach(const std::string& name, std::string& why_not);

  udp_flow_bpf* skel_;
  RouteQuery routes_;
  int map_fd_ = -1;
  std::vector<Attachment> attached_;
};

}  // namespace snigate::udp_flow
