#pragma once
// Two network namespaces joined by a veth pair, for the ban vm-tests: "edge" (where snigate
// and its XDP program live) and "client" (several source addresses). Names sg-ban-*, addresses
// 10.5.x.x and fd00:5:: only inside them. Removed by the destructor; namespaces a killed run
// left behind are removed by the next run.
#include <chrono>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace snigate::vmtest {

class BanNetns {
 public:
  // Edge 10.5.0.1/16 and fd00:5::1/64. Throws std::runtime_error with the failing command.
  explicit BanNetns(const std::vector<std::string>& client_addresses);
  ~BanNetns();
  BanNetns(const BanNetns&) = delete;
  BanNetns& operator=(const BanNetns&) = delete;

  const std::string& edge_ns() const { return edge_; }
  const std::string& client_ns() const { return client_; }
  const std::string& edge_if() const { return edge_if_; }
  int edge_fd() const { return edge_fd_; }
  int client_fd() const { return client_fd_; }

 private:
  std::string edge_, client_, edge_if_, client_if_;
  int edge_fd_ = -1;
  int client_fd_ = -1;
};

// Runs `command` through the shell; throws with its text when it fails.
void run(const std::string& command);

// Moves the calling thread into a namespace until destroyed. Threads it starts inherit it.
class EnterNetns {
 public:
  explicit EnterNetns(int ns_fd);
  ~EnterNetns();
  EnterNetns(const EnterNetns&) = delete;
  EnterNetns& operator=(const EnterNetns&) = delete;

 private:
  int home_fd_;
};

// A TCP listener in a namespace, on [::] with an ephemeral port, IPv4 and IPv6.
class Listener {
 public:
  explicit Listener(int ns_fd);
  ~Listener();
  unsigned short port() const { return port_; }
  // The next connection within `timeout`, or -1.
  int accept_one(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  unsigned short port_ = 0;
};

// A TCP connection from `source` (inside the namespace `ns_fd`) to `dest`:port. The socket fd
// once connected within `timeout`, or -1 (the SYN went unanswered).
int connect_from(int ns_fd, const boost::asio::ip::address& source,
                 const boost::asio::ip::address& dest, unsigned short port,
                 std::chrono::milliseconds timeout);
// True when a connection attempt succeeds; closes it again.
bool can_connect(int ns_fd, const char* source, const char* dest, unsigned short port,
                 std::chrono::milliseconds timeout = std::chrono::milliseconds(1500));

}  // namespace snigate::vmtest
