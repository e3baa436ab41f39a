#include "net/local_address.h"

#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "net/prefix.h"

namespace snigate::net {

namespace ip = boost::asio::ip;

namespace {

// One RTM_GETROUTE for the address (what `ip route get ADDR` asks); nullopt when rtnetlink
// cannot be asked. The kernel answers inside sendto(), so the receive timeout is a guard.
std::optional<bool> kernel_says_local(const ip::address& address) {
  int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return std::nullopt;
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct {
    nlmsghdr header;
    rtmsg route;
    char attributes[64];
  } request{};
  const bool v4 = address.is_v4();
  std::uint8_t bytes[16];
  std::size_t size = v4 ? 4 : 16;
  if (v4) {
    auto b = address.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), bytes);
  } else {
    auto b = address.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), bytes);
  }
  request.header.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
  request.header.nlmsg_type = RTM_GETROUTE;
  request.header.nlmsg_flags = NLM_F_REQUEST;
  request.header.nlmsg_seq = 1;
  request.route.rtm_family = v4 ? AF_INET : AF_INET6;
  request.route.rtm_dst_len = static_cast<unsigned char>(size * 8);
  auto* attribute = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&request) +
                                              NLMSG_ALIGN(request.header.nlmsg_len));
  attribute->rta_type = RTA_DST;
  attribute->rta_len = static_cast<unsigned short>(RTA_LENGTH(size));
  std::memcpy(RTA_DATA(attribute), bytes, size);
  request.header.nlmsg_len = NLMSG_ALIGN(request.header.nlmsg_len) + RTA_ALIGN(attribute->rta_len);

  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  std::optional<bool> out;
  if (::sendto(fd, &request, request.header.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) >= 0) {
    alignas(nlmsghdr) char reply[8192];
    auto n = ::recv(fd, reply, sizeof reply, 0);
    auto* h = reinterpret_cast<nlmsghdr*>(reply);
    if (n > 0 && NLMSG_OK(h, static_cast<unsigned>(n))) {
      if (h->nlmsg_type == RTM_NEWROUTE)
        out = static_cast<const rtmsg*>(NLMSG_DATA(h))->rtm_type == RTN_LOCAL;
      else if (h->nlmsg_type == NLMSG_ERROR)
        out = false;  // no route to it (ENETUNREACH...): certainly not delivered here
    }
  }
  ::close(fd);
  return out;
}

}  // namespace

bool is_local_address(const ip::address& raw) {
  auto address = unmap(raw);
  if (address.is_loopback() || (address.is_v4() && (address.to_v4().to_uint() >> 24) == 127))
    return true;
  if (auto kernel = kernel_says_local(address)) return *kernel;
  auto own = interface_addresses();
  return std::any_of(own.begin(), own.end(), [&](const ip::address& a) { return unmap(a) == address; });
}

std::vector<ip::address> interface_addresses() {
  std::vector<ip::address> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (auto* it = list; it; it = it->ifa_next) {
    if (!it->ifa_addr) continue;
    if (it->ifa_addr->sa_family == AF_INET) {
      auto* sin = reinterpret_cast<const sockaddr_in*>(it->ifa_addr);
      out.push_back(ip::address_v4(ntohl(sin->sin_addr.s_addr)));
    } else if (it->ifa_addr->sa_family == AF_INET6) {
      auto* sin6 = reinterpret_cast<const sockaddr_in6*>(it->ifa_addr);
      ip::address_v6::bytes_type bytes;
      std::copy_n(sin6->sin6_addr.s6_addr, 16, bytes.begin());
      out.push_back(ip::address_v6(bytes));
    }
  }
  freeifaddrs(list);
  return out;
}

}  // namespace snigate::net
