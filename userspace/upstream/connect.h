#pragma once
// Connecting a client's session to one of its backend's servers.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>
#include <utility>  // Boost 1.74 awaitable.hpp uses std::exchange without including it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include "config/config.h"
#include "upstream/upstream_pool.h"

namespace snigate::upstream {

struct ConnectAttempt {
  std::string server;               // ServerConfig::text, or "host:port" as resolved
  std::size_t index = 0;            // of the server in BackendConfig::servers
  boost::system::error_code error;  // empty on the attempt that succeeded
  bool at_source = false;           // `error` came from binding the server's source address
  std::chrono::steady_clock::duration took{};  // resolution included
};

struct ConnectResult {
  std::optional<boost::asio::ip::tcp::socket> socket;  // empty when every attempt failed
  boost::asio::ip::tcp::endpoint remote;
  std::vector<ConnectAttempt> attempts;
  std::size_t sent = 0;  // how much of `first` went out on `socket`
};

// Whether the attempt's connect found no free local port towards its server, EADDRNOTAVAIL:
// open connections to it, and the ends in TIME_WAIT of those this host closed first, hold
// every port. A shortage here, not the server's failure: it marks no server down. The same
// error from binding a source address says the address is not this host's: that server
// entry cannot work, and is marked down like a server that refuses.
bool no_local_port(const ConnectAttempt& attempt);

// Tries up to max_tries servers picked by the pool, connect_timeout each (resolution
// included), moving on after refusal, timeout, a failed lookup or no free local port;
// hostnames are resolved asynchronously, and a server with a source address connects from it
// to its addresses of that family. Each outcome but no_local_port is reported to the pool.
// Runs on the caller's executor.
// `first`, when not empty, is what the connection sends first: its send(2) tells whether
// the connect succeeded, in place of a getsockopt(SO_ERROR); whatever of it did not fit in
// the socket's buffer is the caller's to send. To a local server (loopback, or an address of
// this host) it goes out right after connect(2), before any wait or timer (connect.cpp).
boost::asio::awaitable<ConnectResult> connect_upstream(UpstreamPool& pool,
                                                       const config::BackendConfig& backend,
                                                       std::span<const std::uint8_t> first = {});

}  // namespace snigate::upstream
