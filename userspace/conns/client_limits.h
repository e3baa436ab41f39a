#pragma once
// Per-client caps on concurrent connections and on connections still in their preread (no
// ClientHello or request head yet), so one address cannot fill [daemon] max_connections with
// idle sockets and lock everyone else out until the preread timeout. An IPv4 client is its
// address; an IPv6 client is its /64, since one host is handed a whole /64 and can pick any
// address in it. Thread-safe: every worker admits into the same table.
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/ip/address.hpp>

#include "net/prefix.h"

namespace snigate::conns {

class ClientLimits {
 public:
  struct Caps {
    std::size_t connections = 0;  // 0: no cap
    std::size_t prereads = 0;     // 0: no cap
  };

  // One admitted connection; gives its places back when it ends (or is moved from).
  class Ticket {
   public:
    Ticket(Ticket&& other) noexcept;
    Ticket& operator=(Ticket&&) = delete;
    ~Ticket();
    // The preread is over (routed, or the CONNECT request read): the client may open another.
    void preread_done();

   private:
    friend class ClientLimits;
    Ticket(ClientLimits* owner, net::Prefix key) : owner_(owner), key_(key) {}
    ClientLimits* owner_;
    net::Prefix key_;
    bool prereading_ = true;
  };

  // A ticket, or nullopt with *why set ("192.0.2.7 already has 16 connections in preread
  // (max_prereads_per_client)") when `client` is at one of the caps.
  std::optional<Ticket> admit(const boost::asio::ip::address& client, const Caps& caps,
                              std::string* why);
  // The key `client` is counted under: its address (IPv4), its /64 (IPv6).
  static net::Prefix key(const boost::asio::ip::address& client);
  std::size_t clients() const;  // keys with a live connection

 private:
  struct Counts {
    std::size_t connections = 0;
    std::size_t prereads = 0;
  };
  void release(const net::Prefix& key, bool prereading, bool connection);

  mutable std::mutex mu_;
  std::map<net::Prefix, Counts> counts_;
};

}  // namespace snigate::conns
