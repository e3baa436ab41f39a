#pragma once
// Server selection and passive health for one backend, shared by all worker threads.
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "config/config.h"

namespace snigate::upstream {

class UpstreamPool {
 public:
  using Clock = std::chrono::steady_clock;
  // `now` is replaceable so tests can move time without sleeping.
  explicit UpstreamPool(const config::BackendConfig& backend,
                        std::function<Clock::time_point()> now = Clock::now);

  struct Pick {
    std::size_t index;
    const config::ServerConfig* server;
    // Its host when that is an address literal, parsed when the pool was built; a name (unset
    // here) goes to the resolver per connection.
    std::optional<boost::asio::ip::address> address{};
    // Its host is an address literal this host owns (loopback or an interface's, as the
    // kernel's route lookup said when the pool was built): the handshake completes inside
    // connect(2) there, so the connection's first bytes may follow at once.
    bool own_address = false;
  };
  // Smooth weighted round robin (nginx's ngx_http_upstream_get_peer) among primaries that are
  // up; backups, weighted the same way, only when no untried primary is up; never a server in
  // `tried`.
  // nullopt when nothing is left.
  std::optional<Pick> pick(std::span<const std::size_t> tried);
  // max_fails failures within fail_timeout mark the server down for fail_timeout (nginx); as
  // in nginx, a backend's only server is never marked down.
  void report_failure(std::size_t index);
  void report_success(std::size_t index);
  bool is_up(std::size_t index) const;

  const config::BackendConfig& backend() const { return backend_; }

 private:
  struct Peer {
    long current_weight = 0;
    unsigned fails = 0;
    Clock::time_point first_fail{};   // start of the fail_timeout window
    Clock::time_point down_until{};
  };
  bool up_locked(std::size_t index, Clock::time_point now) const;
  std::optional<Pick> pick_among(bool backups, std::span<const std::size_t> tried,
                                 Clock::time_point now);

  config::BackendConfig backend_;
  std::function<Clock::time_point()> now_;
  mutable std::mutex mutex_;
  std::vector<Peer> peers_;
  // Per server, worked out once per configuration load, not per connection: own_address is a
  // netlink round trip. An address added or removed later only costs a send(2) or a wake-up;
  // the result stays right.
  std::vector<Pick> picks_;
};

}  // namespace snigate::upstream
