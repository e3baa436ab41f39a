#pragma once
// Where the kernel routes a datagram the edge sends: the interface, and whether the
// destination is one of this host's addresses. Asked of the routing table over rtnetlink
// (RTM_GETROUTE, what `ip route get DST from SRC` prints), in the network namespace the
// query object was made in.
#include <sys/socket.h>

#include <mutex>
#include <optional>
#include <string>

namespace snigate::udp_flow {

struct Route {
  unsigned oif = 0;    // outgoing interface index; the loopback's for a local destination
  bool local = false;  // RTN_LOCAL: delivered to this host
};

class RouteQuery {
 public:
  // Opens the rtnetlink socket; nullopt and `error` when it cannot.
  static std::optional<RouteQuery> open(std::string& error);
  RouteQuery(RouteQuery&& other) noexcept;
  RouteQuery& operator=(RouteQuery&&) = delete;
  RouteQuery(const RouteQuery&) = delete;
  ~RouteQuery();

  // The route from `src` (an address of this host) to `dst`, both AF_INET or both AF_INET6;
  // ports are ignored. nullopt and `error` (the kernel's answer) when there is none.
  std::optional<Route> lookup(const sockaddr_storage& src, const sockaddr_storage& dst,
                              std::string& error);

 private:
  explicit RouteQuery(int fd) : fd_(fd) {}
  int fd_ = -1;
  unsigned seq_ = 0;
  std::mutex mutex_;  // one request in flight on the socket
};

}  // namespace snigate::udp_flow
