#pragma once
// Asynchronous DNS for the forward modes: c-ares queries driven by the Boost.Asio event loop
// (its sockets watched with async_wait, its retransmit timer on a steady_timer), A and AAAA
// together, answers cached for their TTL, every lookup bounded by a deadline.
//
// Not thread-safe: one Resolver per event loop (c-ares 1.18 channels are single-threaded).
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>  // boost 1.74 awaitable.hpp uses std::exchange without including it
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <toml++/toml.h>

namespace snigate::forward {

struct ResolverConfig {
  // "127.0.0.53", "127.0.7.53:5353", "[2001:db8::53]:53". Empty: /etc/resolv.conf.
  std::vector<std::string> servers;
  std::chrono::milliseconds timeout{std::chrono::seconds(5)};
  // Answers are kept for their TTL, at most this long, and at most this many names.
  std::chrono::seconds max_ttl{std::chrono::hours(1)};
  std::size_t cache_size = 10000;

  bool operator==(const ResolverConfig&) const = default;
};

// The optional top-level `[resolver]` table:
//   servers = ["127.0.0.53"], timeout = "2s", max_ttl = "1h", cache_size = 10000.
// Throws config::ConfigError with file:line on a bad value.
ResolverConfig parse_resolver_config(const toml::table& root);

enum class ResolveStatus { Ok, NotFound, Timeout, Error };
const char* to_string(ResolveStatus status);

struct Resolution {
  ResolveStatus status = ResolveStatus::Error;
  std::vector<boost::asio::ip::address> addresses;  // Ok: at least one, IPv4 first
  std::string error;                                // otherwise: what went wrong, for the log
  std::chrono::seconds ttl{0};
  bool from_cache = false;
};

class Resolver {
 public:
  // Throws std::runtime_error when c-ares cannot start or a server is malformed.
  Resolver(boost::asio::any_io_executor executor, ResolverConfig config);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // An IP literal resolves to itself. Concurrent lookups of one name share one query.
  boost::asio::awaitable<Resolution> resolve(std::string_view name);

  const ResolverConfig& config() const;
  // Queries sent to c-ares so far (cache misses), for tests and stats.
  std::uint64_t queries() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace snigate::forward
