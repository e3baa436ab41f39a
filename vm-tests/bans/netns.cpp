#include "netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace snigate::vmtest {
namespace {

std::string capture(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  std::string out;
  char buffer[256];
  while (pipe && std::fgets(buffer, sizeof buffer, pipe.get())) out += buffer;
  return out;
}

// Namespaces are named sg-ban-{e,c}PID: those of a run that no longer exists are leftovers.
void remove_stale() {
  auto list = capture("ip netns list 2>/dev/null");
  std::size_t at = 0;
  while ((at = list.find("sg-ban-", at)) != std::string::npos) {
    auto end = list.find_first_of(" \n", at);
    auto name = list.substr(at, end - at);
    at = end;
    if (name.size() < 9) continue;
    pid_t owner = static_cast<pid_t>(std::atoi(name.c_str() + 8));
    if (owner > 0 && (::kill(owner, 0) == 0 || errno != ESRCH)) continue;
    std::fprintf(stderr, "vm-test: removing namespace %s left by a killed run\n", name.c_str());
    std::system(("ip netns del " + name + " 2>/dev/null").c_str());
  }
}

int open_ns(const std::string& name) {
  int fd = ::open(("/var/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open namespace " + name + ": " + std::strerror(errno));
  return fd;
}

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

int socket_in(int ns_fd, int family) {
  EnterNetns in(ns_fd);
  return ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

}  // namespace

void run(const std::string& command) {
  if (std::system(command.c_str()) != 0) throw std::runtime_error("command failed: " + command);
}

BanNetns::BanNetns(const std::vector<std::string>& client_addresses) {
  remove_stale();
  const auto pid = std::to_string(::getpid());
  edge_ = "sg-ban-e" + pid;
  client_ = "sg-ban-c" + pid;
  edge_if_ = "sgbe" + pid;
  client_if_ = "sgbc" + pid;
  try {
    run("ip netns add " + edge_);
    run("ip netns add " + client_);
    run("ip -n " + edge_ + " link add " + edge_if_ + " type veth peer name " + client_if_ +
        " netns " + client_);
    run("ip -n " + edge_ + " link set lo up");
    run("ip -n " + client_ + " link set lo up");
    run("ip -n " + edge_ + " addr add 10.5.0.1/16 dev " + edge_if_);
    run("ip -n " + edge_ + " addr add fd00:5::1/64 dev " + edge_if_ + " nodad");
    for (const auto& a : client_addresses) {
      bool v6 = a.find(':') != std::string::npos;
      run("ip -n " + client_ + " addr add " + a + (v6 ? "/64 nodad" : "/16") + " dev " + client_if_);
    }
    run("ip -n " + edge_ + " link set " + edge_if_ + " up");
    run("ip -n " + client_ + " link set " + client_if_ + " up");
    edge_fd_ = open_ns(edge_);
    client_fd_ = open_ns(client_);
  } catch (...) {
    std::system(("ip netns del " + edge_ + " 2>/dev/null; ip netns del " + client_ + " 2>/dev/null").c_str());
    throw;
  }
}

BanNetns::~BanNetns() {
  if (edge_fd_ >= 0) ::close(edge_fd_);
  if (client_fd_ >= 0) ::close(client_fd_);
  std::system(("ip netns del " + edge_ + " 2>/dev/null; ip netns del " + client_ + " 2>/dev/null").c_str());
}

EnterNetns::EnterNetns(int ns_fd) : home_fd_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
  if (home_fd_ < 0 || ::setns(ns_fd, CLONE_NEWNET) != 0)
    throw std::runtime_error(std::string("setns: ") + std::strerror(errno));
}

EnterNetns::~EnterNetns() {
  ::setns(home_fd_, CLONE_NEWNET);
  ::close(home_fd_);
}

Listener::Listener(int ns_fd) : fd_(socket_in(ns_fd, AF_INET6)) {
  int off = 0, on = 1;
  ::setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  socklen_t len = sizeof any;
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&any), len) != 0 || ::listen(fd_, 64) != 0 ||
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

int connect_from(int ns_fd, const boost::asio::ip::address& source,
                 const boost::asio::ip::address& dest, unsigned short port,
                 std::chrono::milliseconds timeout) {
  int fd = socket_in(ns_fd, source.is_v4() ? AF_INET : AF_INET6);
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

bool can_connect(int ns_fd, const char* source, const char* dest, unsigned short port,
                 std::chrono::milliseconds timeout) {
  int fd = connect_from(ns_fd, boost::asio::ip::make_address(source),
                        boost::asio::ip::make_address(dest), port, timeout);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

}  // namespace snigate::vmtest
