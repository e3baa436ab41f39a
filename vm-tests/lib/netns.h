#pragma once
// Test hosts in network namespaces, for vm-tests (root): client, edge and backend joined by
// veth, IPv4 and IPv6. Names carry the test process id, so cases that ctest runs in parallel
// never meet; namespaces left behind by a process that died are removed by the next one.
#include <functional>
#include <string>

namespace snigate::vmtest {

// Why this process cannot make namespaces (not root, no `ip`), or empty when it can.
std::string netns_unavailable();

struct Addresses {
  std::string client, edge_front;   // client <-> edge link
  std::string edge_back, backend;   // edge <-> backend link
};

class Topology {
 public:
  // `prefix` is the area's namespace prefix (sg-relay, sg-ban, sg-fwd) and `n` its block:
  // addresses are 10.n.1.0/24 and fd00:n:1::/64 (client-edge), 10.n.2.0/24 and fd00:n:2::/64
  // (edge-backend). Throws std::runtime_error, after removing what it made, on failure.
  Topology(const std::string& prefix, int n);
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  const std::string& client() const { return client_; }
  const std::string& edge() const { return edge_; }
  const std::string& backend() const { return backend_; }
  const Addresses& v4() const { return v4_; }
  const Addresses& v6() const { return v6_; }

 private:
  void remove() noexcept;
  std::string client_, edge_, backend_;
  Addresses v4_, v6_;
};

// One namespace, PREFIX-PID, with nothing but loopback (up): for a test that changes the
// namespace's own sysctls. Removed, with what it holds, on destruction.
class LoopbackHost {
 public:
  explicit LoopbackHost(const std::string& prefix);
  ~LoopbackHost();
  LoopbackHost(const LoopbackHost&) = delete;
  LoopbackHost& operator=(const LoopbackHost&) = delete;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

// Runs `fn` on this thread inside namespace `name` (setns), then returns to the namespace it
// was in. Sockets created by `fn` stay in `name` for their whole life.
void in_netns(const std::string& name, const std::function<void()>& fn);

// Runs a shell command; throws std::runtime_error with the command when it fails.
void run(const std::string& command);

}  // namespace snigate::vmtest
