#pragma once
// Every live connection, across all workers: what `snigatectl conns` lists, and how a new
// ban ends the connections of the client it names. Thread-safe.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "relay/relay.h"

namespace snigate::conns {

// A value only some records carry, on the heap so that the others (every idle relayed TCP
// connection has one record, issue 17) hold a pointer instead; copied with its record.
template <class T>
class Rare {
 public:
  Rare() = default;
  Rare(const Rare& o) : p_(o.p_ ? std::make_unique<T>(*o.p_) : nullptr) {}
  Rare(Rare&&) noexcept = default;
  Rare& operator=(const Rare& o) {
    if (this != &o) p_ = o.p_ ? std::make_unique<T>(*o.p_) : nullptr;
    return *this;
  }
  Rare& operator=(Rare&&) noexcept = default;
  Rare& operator=(T value) {
    p_ = std::make_unique<T>(std::move(value));
    return *this;
  }
  explicit operator bool() const { return p_ != nullptr; }
  const T& operator*() const { return *p_; }
  const T* operator->() const { return p_.get(); }
  // The value, made empty on first use.
  T& emplace() {
    if (!p_) p_ = std::make_unique<T>();
    return *p_;
  }

 private:
  std::unique_ptr<T> p_;
};

struct ConnInfo {
  std::uint64_t id = 0;
  std::string listener;
  std::string protocol;                   // "quic": a UDP flow; "": a TCP connection
  boost::asio::ip::tcp::endpoint peer;    // who connected to us (a flow's client address:port)
  boost::asio::ip::address client;        // real client: peer, or from the PROXY header
  std::uint16_t client_port = 0;          // its port, as the access log shows the client
  std::string server_name;                // SNI or Host
  std::string alpn;                       // the client's offer, as alpn_list joins it
  std::string backend;
  std::string rule;                       // what chose the backend (routing::RouteMatch::rule)
  std::string upstream;                   // address actually connected
  std::string state;                      // preread | connecting | relaying; flows: hello | forwarding
  // Forward connections only (SNI forwarding, CONNECT), unset otherwise: what the client asked
  // for ("NAME:PORT"), what DNS answered ("A,B") and what the allow-list and address policy
  // decided ("allowed", or why not), as the access log's requested=/resolved=/verdict= show.
  struct Forward {
    std::string requested;
    std::string resolved;
    std::string verdict;
  };
  Rare<Forward> forward;
  std::chrono::system_clock::time_point started;
  std::shared_ptr<const relay::Counters> counters;  // bytes each way and the relay moving them
  // A QUIC flow's datagrams each way, joined to its record when it ends (the flow counts them
  // meanwhile, without the registry's lock); unset on TCP.
  struct Datagrams {
    std::uint64_t packets_in = 0, packets_out = 0;  // held ones included
    bool kernel = false;  // the kernel path forwarded the flow: what it moved of the above
    std::uint64_t kernel_packets_in = 0, kernel_packets_out = 0;
  };
  Rare<Datagrams> datagrams;
};

// ALPN protocols in client order, comma-joined: how ConnInfo::alpn, the access log and
// `snigatectl conns` show them, for TCP and QUIC alike.
std::string alpn_list(const std::vector<std::string>& protocols);

// Why a connection is ended from outside, for its access-log line.
enum class KillReason { Banned, Drain };

class ConnRegistry {
 public:
  // `kill` must be callable from any thread; it ends the connection on its own event loop.
  using Kill = std::function<void(KillReason)>;

  // By value: a caller that is done with its record moves it in, copying no string.
  void add(ConnInfo info, Kill kill);
  void update(std::uint64_t id, const std::function<void(ConnInfo&)>& change);
  // Removes the connection and hands back its record (for its access-log line).
  std::optional<ConnInfo> take(std::uint64_t id);

  // Oldest first (by id), so listings are stable between calls.
  std::vector<ConnInfo> snapshot() const;
  std::size_t size() const;
  // Ends every connection whose real client matches; returns how many were asked to end.
  std::size_t kill_matching(const std::function<bool(const boost::asio::ip::address&)>& match,
                            KillReason reason = KillReason::Banned);

  std::uint64_t next_id() { return next_id_.fetch_add(1) + 1; }

 private:
  struct Entry {
    ConnInfo info;
    Kill kill;
  };
  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, Entry> entries_;
  std::atomic<std::uint64_t> next_id_{0};
};

}  // namespace snigate::conns
