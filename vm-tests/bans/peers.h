#pragma once
// TCP peers for the ban vm-tests, inside the namespaces of vm-tests/lib's Topology: a listener
// and connection attempts from a chosen source address (the client namespace holds several).
#include <chrono>
#include <string>

#include <boost/asio/ip/address.hpp>

namespace snigate::vmtest {

// A TCP listener in namespace `ns`, on [::] with an ephemeral port, IPv4 and IPv6.
class Listener {
 public:
  explicit Listener(const std::string& ns);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  unsigned short port() const { return port_; }
  // The next connection within `timeout`, or -1.
  int accept_one(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  unsigned short port_ = 0;
};

// A TCP connection from `source` (an address of namespace `ns`) to `dest`:port. The socket fd
// once connected within `timeout`, or -1 (the SYN went unanswered or was refused).
int connect_from(const std::string& ns, const boost::asio::ip::address& source,
                 const boost::asio::ip::address& dest, unsigned short port,
                 std::chrono::milliseconds timeout);
// True when a connection attempt succeeds; closes it again.
bool can_connect(const std::string& ns, const std::string& source, const std::string& dest,
                 unsigned short port,
                 std::chrono::milliseconds timeout = std::chrono::milliseconds(1500));

}  // namespace snigate::vmtest
