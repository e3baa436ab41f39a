#pragma once
// UDP peers for the vm-tests and benches (UDP flows, bans of UDP), inside vm-tests/lib's namespaces: a socket
// made in a chosen namespace and bound to an address there, datagrams with their source, and
// the link knobs that make a receiver check checksums itself.
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace snigate::vmtest {

struct Datagram {
  std::vector<std::uint8_t> bytes;
  sockaddr_storage from{};
};

// "10.8.1.1", "fd00:8:1::1" with a port, as sockaddr_storage.
sockaddr_storage udp_address(const std::string& ip, std::uint16_t port);
std::string to_string(const sockaddr_storage& a);
bool same_address(const sockaddr_storage& a, const sockaddr_storage& b);

class UdpSocket {
 public:
  // Made in namespace `ns`, bound to `ip` with an ephemeral port. Throws on failure.
  UdpSocket(const std::string& ns, const std::string& ip);
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  int fd() const { return fd_; }
  const sockaddr_storage& local() const { return local_; }
  void connect_to(const sockaddr_storage& peer);
  bool send_to(const std::vector<std::uint8_t>& bytes, const sockaddr_storage& to);
  // `bytes` as datagrams of `segment` bytes in one send (UDP_SEGMENT, UDP GSO).
  bool send_gso(const std::vector<std::uint8_t>& bytes, std::uint16_t segment,
                const sockaddr_storage& to);
  // The next datagram within `timeout`, or nullopt.
  std::optional<Datagram> receive(std::chrono::milliseconds timeout);
  // Datagrams already queued, without waiting.
  std::size_t drain();

 private:
  int fd_ = -1;
  sockaddr_storage local_{};
};

// Turns checksum offload of `dev` in `ns` on or off (ethtool's rx/tx, through SIOCETHTOOL).
// With tx off the stack (or a redirect to the device) finishes every checksum in software;
// with rx off on a veth end the stack verifies what arrives instead of trusting the peer.
void set_checksum_offload(const std::string& ns, const std::string& dev, bool rx, bool tx);

// The namespace's UDP receive checksum errors, IPv4 and IPv6 together (/proc/net/snmp
// InCsumErrors, /proc/net/snmp6 Udp6InCsumErrors).
std::uint64_t udp_checksum_errors(const std::string& ns);

}  // namespace snigate::vmtest
