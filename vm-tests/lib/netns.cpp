#include "netns.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace snigate::vmtest {

namespace {

bool pid_alive(long pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }

// Quiet and never throwing: for clean-up paths.
void delete_netns(const std::string& name) noexcept {
  std::system(("ip netns del " + name + " 2>/dev/null").c_str());
}

// A namespace with its loopback up, or none (and an exception) if either step fails.
void add_netns(const std::string& name) {
  run("ip netns add " + name);
  try {
    run("ip -n " + name + " link set lo up");
  } catch (...) {
    delete_netns(name);
    throw;
  }
}

// Namespaces named PREFIX-PID-* whose process is gone: an earlier run that was killed.
void remove_stale(const std::string& prefix) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
    std::string name = entry.path().filename();
    if (name.rfind(prefix + "-", 0) != 0) continue;
    long pid = std::strtol(name.c_str() + prefix.size() + 1, nullptr, 10);
    if (pid > 0 && !pid_alive(pid)) delete_netns(name);
  }
}

}  // namespace

std::string netns_unavailable() {
  if (::geteuid() != 0) return "needs root (network namespaces)";
  if (std::system("ip -V >/dev/null 2>&1") != 0) return "needs iproute2 (`ip`)";
  return {};
}

void run(const std::string& command) {
  int rc = std::system(command.c_str());
  if (rc != 0) throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + command);
}

Topology::Topology(const std::string& prefix, int n) {
  remove_stale(prefix);
  const std::string base = prefix + "-" + std::to_string(::getpid());
  client_ = base + "-client";
  edge_ = base + "-edge";
  backend_ = base + "-backend";
  const std::string net = std::to_string(n);
  v4_ = {"10." + net + ".1.1", "10." + net + ".1.2", "10." + net + ".2.1", "10." + net + ".2.2"};
  v6_ = {"fd00:" + net + ":1::1", "fd00:" + net + ":1::2", "fd00:" + net + ":2::1",
         "fd00:" + net + ":2::2"};
  try {
    for (const auto* ns : {&client_, &edge_, &backend_}) add_netns(*ns);
    // veth pairs made inside the namespaces, so no interface name ever exists in the host's,
    // with addresses of our own: the neighbours below name them.
    const auto mac = [&](int link, int end) {
      char text[18];
      std::snprintf(text, sizeof text, "02:00:00:%02x:%02x:%02x", n & 0xff, link, end);
      return std::string(text);
    };
    run("ip -n " + client_ + " link add veth0 address " + mac(1, 1) +
        " type veth peer name veth0 address " + mac(1, 2) + " netns " + edge_);
    run("ip -n " + edge_ + " link add veth1 address " + mac(2, 1) +
        " type veth peer name veth1 address " + mac(2, 2) + " netns " + backend_);
    auto addr = [](const std::string& ns, const std::string& dev, const std::string& a4,
                   const std::string& a6) {
      run("ip -n " + ns + " addr add " + a4 + "/24 dev " + dev);
      run("ip -n " + ns + " addr add " + a6 + "/64 dev " + dev + " nodad");
      run("ip -n " + ns + " link set " + dev + " up");
    };
    addr(client_, "veth0", v4_.client, v6_.client);
    addr(edge_, "veth0", v4_.edge_front, v6_.edge_front);
    addr(edge_, "veth1", v4_.edge_back, v6_.edge_back);
    addr(backend_, "veth1", v4_.backend, v6_.backend);
    // Each host knows its neighbour's link address from the start. Resolved on demand, an
    // IPv6 neighbour sometimes went from INCOMPLETE to FAILED on a loaded machine, and a
    // client's connect ended in EHOSTUNREACH: the tests check the relay, not neighbour
    // discovery.
    auto neighbour = [](const std::string& ns, const std::string& dev, const std::string& ip,
                        const std::string& lladdr) {
      run("ip -n " + ns + " neigh replace " + ip + " lladdr " + lladdr + " dev " + dev +
          " nud permanent");
    };
    for (const auto* a : {&v4_, &v6_}) {
      neighbour(client_, "veth0", a->edge_front, mac(1, 2));
      neighbour(edge_, "veth0", a->client, mac(1, 1));
      neighbour(edge_, "veth1", a->backend, mac(2, 2));
      neighbour(backend_, "veth1", a->edge_back, mac(2, 1));
    }
  } catch (...) {
    remove();
    throw;
  }
}

Topology::~Topology() { remove(); }

void Topology::remove() noexcept {
  // Deleting a namespace deletes its veth ends, and with them the peers.
  for (const auto* ns : {&client_, &edge_, &backend_})
    if (!ns->empty()) delete_netns(*ns);
}

LoopbackHost::LoopbackHost(const std::string& prefix)
    : name_(prefix + "-" + std::to_string(::getpid())) {
  remove_stale(prefix);
  add_netns(name_);
}

LoopbackHost::~LoopbackHost() { delete_netns(name_); }

void in_netns(const std::string& name, const std::function<void()>& fn) {
  int self = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int target = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (self < 0 || target < 0 || ::setns(target, CLONE_NEWNET) != 0) {
    int err = errno;
    if (self >= 0) ::close(self);
    if (target >= 0) ::close(target);
    throw std::runtime_error("setns " + name + ": " + std::strerror(err));
  }
  ::close(target);
  struct Back {
    int fd;
    ~Back() {
      ::setns(fd, CLONE_NEWNET);
      ::close(fd);
    }
  } back{self};
  fn();
}

}  // namespace snigate::vmtest
