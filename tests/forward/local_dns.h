#pragma once
// DNS servers for the forward tests, on 127.0.7.53 only: dnsmasq answering a fixed set of .test
// names (NXDOMAIN for the rest of .test), and a socket that swallows queries.
//   allowed.test -> 127.0.7.10  TTL 60      inside.test -> 127.0.7.11  TTL 60
//   other.test   -> 127.0.7.10  TTL 60      short.test  -> 127.0.7.10  TTL 1
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "integration/harness.h"

namespace snigate::itest {

// dnsmasq cannot bind port 0, so it tries fixed high ports until one is free.
class DnsServer {
 public:
  explicit DnsServer(const TempDir& dir) {
    for (int port = 25353; port < 25353 + 40 && !process_; ++port) {
      auto p = std::make_unique<Process>(
          std::vector<std::string>{
              // Ended with this test even when the test is killed.
              "setpriv", "--pdeathsig", "KILL", "--", "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
              "--listen-address=127.0.7.53", "--bind-interfaces", "--port=" + std::to_string(port),
              "--pid-file=", "--user=root", "--log-queries", "--log-facility=-", "--local=/test/",
              "--local-ttl=60", "--host-record=allowed.test,127.0.7.10",
              "--host-record=inside.test,127.0.7.11", "--host-record=other.test,127.0.7.10",
              "--host-record=short.test,127.0.7.10,1"},
          dir / ("dnsmasq." + std::to_string(port) + ".log"));
      auto m = p->wait_for(std::regex("started, version|failed to create listening socket"));
      if (m && m->str() != "failed to create listening socket" && p->alive()) {
        process_ = std::move(p);
        port_ = port;
      }
    }
    if (!process_) throw std::runtime_error("no free port for dnsmasq on 127.0.7.53");
  }
  std::uint16_t port() const { return port_; }
  std::string log() const { return process_->log(); }

 private:
  std::unique_ptr<Process> process_;
  std::uint16_t port_ = 0;
};

// A DNS "server" that reads queries and never answers.
class SilentDns {
 public:
  SilentDns() {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(0x7f000735);  // 127.0.7.53
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      throw std::runtime_error("silent dns: bind failed");
    port_ = local_port(fd_);
  }
  ~SilentDns() { close(fd_); }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace snigate::itest
