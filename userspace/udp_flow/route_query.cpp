#include "udp_flow/route_query.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace snigate::udp_flow {
namespace {

// The address bytes of an AF_INET/AF_INET6 sockaddr.
std::pair<const void*, std::size_t> address_bytes(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET)
    return {&reinterpret_cast<const sockaddr_in&>(ss).sin_addr, 4};
  return {&reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, 16};
}

void add_attr(nlmsghdr& nh, std::size_t capacity, unsigned short type, const void* data,
              std::size_t len) {
  auto* rta = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&nh) + NLMSG_ALIGN(nh.nlmsg_len));
  if (NLMSG_ALIGN(nh.nlmsg_len) + RTA_SPACE(len) > capacity) return;
  rta->rta_type = type;
  rta->rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
  std::memcpy(RTA_DATA(rta), data, len);
  nh.nlmsg_len = static_cast<__u32>(NLMSG_ALIGN(nh.nlmsg_len) + RTA_SPACE(len));
}

}  // namespace

std::optional<RouteQuery> RouteQuery::open(std::string& error) {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) {
    error = std::string("cannot open an rtnetlink socket: ") + std::strerror(errno);
    return std::nullopt;
  }
  // The kernel answers at once; the bound only keeps a lost answer from hanging a worker.
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return RouteQuery(fd);
}

RouteQuery::RouteQuery(RouteQuery&& other) noexcept : fd_(other.fd_), seq_(other.seq_) {
  other.fd_ = -1;
}

RouteQuery::~RouteQuery() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<Route> RouteQuery::lookup(const sockaddr_storage& src, const sockaddr_storage& dst,
                                        std::string& error) {
  struct {
    nlmsghdr nh;
    rtmsg rt;
    char attrs[64];
  } req{};
  const auto [dst_bytes, len] = address_bytes(dst);
  const auto [src_bytes, src_len] = address_bytes(src);
  std::lock_guard lock(mutex_);
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
  req.nh.nlmsg_type = RTM_GETROUTE;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.nh.nlmsg_seq = ++seq_;
  req.rt.rtm_family = static_cast<unsigned char>(dst.ss_family);
  req.rt.rtm_dst_len = static_cast<unsigned char>(len * 8);
  req.rt.rtm_src_len = static_cast<unsigned char>(src_len * 8);
  add_attr(req.nh, sizeof req, RTA_DST, dst_bytes, len);
  add_attr(req.nh, sizeof req, RTA_SRC, src_bytes, src_len);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_, &req, req.nh.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) < 0) {
    error = std::string("route query: ") + std::strerror(errno);
    return std::nullopt;
  }
  alignas(nlmsghdr) char buf[4096];
  // Skip answers to earlier queries that timed out; a few at most.
  for (int i = 0; i < 8; ++i) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) {
      error = std::string("route query: ") + std::strerror(errno);
      return std::nullopt;
    }
    auto* nh = reinterpret_cast<nlmsghdr*>(buf);
    if (!NLMSG_OK(nh, static_cast<unsigned>(n)) || nh->nlmsg_seq != seq_) continue;
    if (nh->nlmsg_type == NLMSG_ERROR) {
      auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(nh));
      error = std::string("no route: ") + std::strerror(-e->error);
      return std::nullopt;
    }
    auto* rt = static_cast<rtmsg*>(NLMSG_DATA(nh));
    Route route;
    route.local = rt->rtm_type == RTN_LOCAL;
    int attrs_len = static_cast<int>(RTM_PAYLOAD(nh));
    for (auto* a = RTM_RTA(rt); RTA_OK(a, attrs_len); a = RTA_NEXT(a, attrs_len))
      if (a->rta_type == RTA_OIF) std::memcpy(&route.oif, RTA_DATA(a), sizeof route.oif);
    if (route.oif == 0) {
      error = "the route has no outgoing interface";
      return std::nullopt;
    }
    if (rt->rtm_type != RTN_UNICAST && !route.local) {
      error = "the route is not unicast (type " + std::to_string(rt->rtm_type) + ")";
      return std::nullopt;
    }
    return route;
  }
  error = "route query: no answer from the kernel";
  return std::nullopt;
}

}  // namespace snigate::udp_flow
