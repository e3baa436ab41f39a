#pragma once
// The client side of a `protocol = "connect"` listener: read the HTTP/1.1 request head, accept
// only `CONNECT host:port`, check the listener's credentials, open the destination through the
// Forwarder, and answer `200 Connection established` or an error with a short text body
// (400, 403, 407, 502, 504). After a 200 the caller relays; after anything else it closes.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>  // boost 1.74 awaitable.hpp uses std::exchange without including it
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "forward/forwarder.h"
#include "forward/proxy_auth.h"
#include "net/prefix.h"

namespace snigate::forward {

// What one connect listener enforces.
struct ConnectRules {
  Rules rules;
  ProxyAuth auth;
  std::vector<net::Prefix> clients;                 // who may use it; empty: anyone
  std::size_t max_head = 8192;                      // the listener's preread_max
  std::chrono::milliseconds head_timeout{5000};     // the listener's preread_timeout
};

// Called with the requested host and port once the head is parsed and the client
// authenticated, before the allow-list, DNS and connect: so a live connection can show what
// it asked for while its verdict is pending.
using OnDestination = std::function<void(const std::string& host, std::uint16_t port)>;

// `buffer` holds what the client already sent (possibly nothing); on return it holds the bytes
// the client sent after the request head, which belong upstream. The verdict is BadRequest
// also when the head did not arrive in time or the client left; `detail` says which.
// `client_address`: the real client (the PROXY header's when trusted), checked against
// rules.clients once the head is read, so a refused client gets its 403 before any credential
// is asked for.
boost::asio::awaitable<ForwardResult> serve_connect_request(
    boost::asio::ip::tcp::socket& client, std::vector<std::uint8_t>& buffer,
    const ConnectRules& rules, Forwarder& forwarder,
    const boost::asio::ip::address& client_address, OnDestination on_destination = {});

// The whole response for a verdict: status line, headers, body naming the destination.
std::string connect_reply(const ForwardResult& result, const ProxyAuth& auth);

// For a TLS listener whose client did not start with a TLS record: the access-log reason when
// the bytes are recognisably an HTTP proxy request, else nullopt.
std::optional<std::string> explain_not_tls(std::span<const std::uint8_t> first_bytes);

}  // namespace snigate::forward
