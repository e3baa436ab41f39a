#include "peers.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "netns.h"

namespace snigate::vmtest {
namespace {

sockaddr_storage to_sockaddr(const boost::asio::ip::address& a, unsigned short port, socklen_t& len) {
  sockaddr_storage ss{};
  if (a.is_v4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    auto b = a.to_v4().to_bytes();
    std::memcpy(&sin->sin_addr, b.data(), b.size());
    len = sizeof *sin;
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    auto b = a.to_v6().to_bytes();
    std::memcpy(&sin6->sin6_addr, b.data(), b.size());
    len = sizeof *sin6;
  }
  return ss;
}

// A socket lives in the namespace it was made in, whatever thread uses it later.
int socket_in(const std::string& ns, int family) {
  int fd = -1;
  in_netns(ns, [&] { fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0); });
  return fd;
}

}  // namespace

Listener::Listener(const std::string& ns) : fd_(socket_in(ns, AF_INET6)) {
  int off = 0, on = 1;
  ::setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  socklen_t len = sizeof any;
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&any), len) != 0 || ::listen(fd_, 64) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&any), &len) != 0)
    throw std::runtime_error(std::string("listener: ") + std::strerror(errno));
  port_ = ntohs(any.sin6_port);
}

Listener::~Listener() { ::close(fd_); }

int Listener::accept_one(std::chrono::milliseconds timeout) {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return -1;
  return ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
}

int connect_from(const std::string& ns, const boost::asio::ip::address& source,
                 const boost::asio::ip::address& dest, unsigned short port,
                 std::chrono::milliseconds timeout) {
  int fd = socket_in(ns, source.is_v4() ? AF_INET : AF_INET6);
  socklen_t len = 0;
  auto src = to_sockaddr(source, 0, len);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&src), len) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  auto dst = to_sockaddr(dest, port, len);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), len) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int err = 0;
  socklen_t errlen = sizeof err;
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1 ||
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0 || err != 0) {
    ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

bool can_connect(const std::string& ns, const std::string& source, const std::string& dest,
                 unsigned short port, std::chrono::milliseconds timeout) {
  int fd = connect_from(ns, boost::asio::ip::make_address(source),
                        boost::asio::ip::make_address(dest), port, timeout);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

}  // namespace snigate::vmtest
