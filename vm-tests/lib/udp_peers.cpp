#include "udp_peers.h"

#include <arpa/inet.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "netns.h"

namespace snigate::vmtest {

sockaddr_storage udp_address(const std::string& ip, std::uint16_t port) {
  sockaddr_storage ss{};
  if (ip.find(':') == std::string::npos) {
    auto& sin = reinterpret_cast<sockaddr_in&>(ss);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    if (inet_pton(AF_INET, ip.c_str(), &sin.sin_addr) != 1) throw std::runtime_error("bad " + ip);
  } else {
    auto& sin6 = reinterpret_cast<sockaddr_in6&>(ss);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    if (inet_pton(AF_INET6, ip.c_str(), &sin6.sin6_addr) != 1) throw std::runtime_error("bad " + ip);
  }
  return ss;
}

std::string to_string(const sockaddr_storage& a) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (a.ss_family == AF_INET) {
    const auto& sin = reinterpret_cast<const sockaddr_in&>(a);
    inet_ntop(AF_INET, &sin.sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(ntohs(sin.sin_port));
  }
  const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(a);
  inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof text);
  return "[" + std::string(text) + "]:" + std::to_string(ntohs(sin6.sin6_port));
}

bool same_address(const sockaddr_storage& a, const sockaddr_storage& b) {
  return to_string(a) == to_string(b);
}

static socklen_t length_of(const sockaddr_storage& a) {
  return a.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

UdpSocket::UdpSocket(const std::string& ns, const std::string& ip) {
  sockaddr_storage at = udp_address(ip, 0);
  in_netns(ns, [&] { fd_ = ::socket(at.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0); });
  socklen_t len = sizeof local_;
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&at), length_of(at)) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local_), &len) != 0)
    throw std::runtime_error("udp socket in " + ns + " on " + ip + ": " + std::strerror(errno));
}

UdpSocket::~UdpSocket() { ::close(fd_); }

void UdpSocket::connect_to(const sockaddr_storage& peer) {
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&peer), length_of(peer)) != 0)
    throw std::runtime_error("udp connect to " + to_string(peer) + ": " + std::strerror(errno));
  socklen_t len = sizeof local_;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local_), &len);
}

bool UdpSocket::send_to(const std::vector<std::uint8_t>& bytes, const sockaddr_storage& to) {
  return ::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                  length_of(to)) == static_cast<ssize_t>(bytes.size());
}

bool UdpSocket::send_gso(const std::vector<std::uint8_t>& bytes, std::uint16_t segment,
                         const sockaddr_storage& to) {
  iovec iov{const_cast<std::uint8_t*>(bytes.data()), bytes.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(std::uint16_t))] = {};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr_storage*>(&to);
  msg.msg_namelen = length_of(to);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof segment);
  std::memcpy(CMSG_DATA(c), &segment, sizeof segment);
  return ::sendmsg(fd_, &msg, 0) == static_cast<ssize_t>(bytes.size());
}

std::optional<Datagram> UdpSocket::receive(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
  Datagram d;
  d.bytes.resize(65536);
  socklen_t len = sizeof d.from;
  ssize_t n = ::recvfrom(fd_, d.bytes.data(), d.bytes.size(), MSG_DONTWAIT,
                         reinterpret_cast<sockaddr*>(&d.from), &len);
  if (n < 0) return std::nullopt;
  d.bytes.resize(static_cast<std::size_t>(n));
  return d;
}

std::size_t UdpSocket::drain() {
  std::size_t n = 0;
  char buf[65536];
  while (::recv(fd_, buf, sizeof buf, MSG_DONTWAIT) >= 0) ++n;
  return n;
}

void set_checksum_offload(const std::string& ns, const std::string& dev, bool rx, bool tx) {
  in_netns(ns, [&] {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    for (auto [cmd, on] : {std::pair{ETHTOOL_SRXCSUM, rx}, std::pair{ETHTOOL_STXCSUM, tx}}) {
      ethtool_value value{static_cast<__u32>(cmd), on ? 1u : 0u};
      ifreq req{};
      std::strncpy(req.ifr_name, dev.c_str(), IFNAMSIZ - 1);
      req.ifr_data = reinterpret_cast<char*>(&value);
      if (::ioctl(s, SIOCETHTOOL, &req) != 0) {
        int err = errno;
        ::close(s);
        throw std::runtime_error("checksum offload of " + dev + " in " + ns + ": " +
                                 std::strerror(err));
      }
    }
    ::close(s);
  });
}

std::uint64_t udp_checksum_errors(const std::string& ns) {
  std::uint64_t total = 0;
  in_netns(ns, [&] {
    // /proc/net follows the reading thread's namespace only through thread-self.
    std::ifstream snmp("/proc/thread-self/net/snmp");
    std::string names, values;
    while (std::getline(snmp, names) && std::getline(snmp, values)) {
      if (names.rfind("Udp: ", 0) != 0) continue;
      std::istringstream n(names), v(values);
      for (std::string name, value; n >> name && v >> value;)
        if (name == "InCsumErrors") total += std::stoull(value);
    }
    std::ifstream snmp6("/proc/thread-self/net/snmp6");
    for (std::string name, value; snmp6 >> name >> value;)
      if (name == "Udp6InCsumErrors") total += std::stoull(value);
  });
  return total;
}

}  // namespace snigate::vmtest
