#pragma once
// Forwarding to a destination chosen by the client (the SNI name of a `forward = PORT`
// backend, or a CONNECT host:port): allow-list on the name, resolve, address policy on every
// answer, connect. One call per connection; the daemon then relays as for any backend.
//
// The rules, in order:
//  1. A name must match a name entry of the allow-list; an IP literal must fall in an address
//     or CIDR entry. Anything else is refused at once (403, denied-name), before any DNS query,
//     so the gateway cannot be made to look up names it will never connect to.
//  2. The name is resolved (cache, then c-ares, bounded by the [resolver] timeout).
//  3. Each answer must pass the address policy (see address_policy.h): loopback, link-local,
//     private, reserved, multicast, unspecified and the host's own addresses are refused unless
//     an address/CIDR entry covers them (or, except own/unspecified/multicast, allow_private).
//     So a listed name that resolves inside needs its inside address listed too.
//  4. The addresses left are tried in order, each within the connect timeout.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>  // boost 1.74 awaitable.hpp uses std::exchange without including it
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "forward/address_policy.h"
#include "forward/allow_list.h"
#include "forward/resolver.h"

namespace snigate::forward {

// The allow-list and address rules of one connect listener or forward backend.
struct Rules {
  AllowList allow;
  bool allow_private = false;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
};

// What happened, in the access log's words, and the HTTP status a CONNECT client gets for it.
enum class Verdict {
  Allowed,         // 200: connected
  BadRequest,      // 400: not a CONNECT host:port request
  AuthRequired,    // 407: credentials missing or wrong
  DeniedClient,    // 403: the client's address is not in the listener's `clients`
  DeniedName,      // 403: name not on the allow-list
  DeniedAddress,   // 403: every address the name resolved to is refused by the address policy
  DnsNotFound,     // 502: no such name, or no A/AAAA record
  DnsError,        // 502: the resolver failed (SERVFAIL, refused, ...)
  DnsTimeout,      // 504: no DNS answer within [resolver] timeout
  ConnectFailed,   // 502: every allowed address refused or reset
  ConnectTimeout,  // 504: no address accepted within the connect timeout
};
const char* to_string(Verdict verdict);  // "allowed", "denied-name", "dns-timeout", ...
int http_status(Verdict verdict);

struct ForwardResult {
  Verdict verdict = Verdict::BadRequest;
  std::string name;  // as requested, normalized
  std::uint16_t port = 0;
  std::vector<boost::asio::ip::address> resolved;
  // Set when allowed and connected; a CONNECT client that left before its 200 drops it.
  std::optional<boost::asio::ip::tcp::socket> upstream;
  boost::asio::ip::tcp::endpoint connected;
  std::string detail;  // why, for the log: "127.0.7.10: loopback", "connection refused", ...

  // Relay from here; otherwise close.
  bool ok() const { return verdict == Verdict::Allowed && upstream.has_value(); }
  // "NAME:PORT" ("NAME" without a port, "" without a name), for the access log and conns.
  std::string requested() const;
  // "A,B", "" before any answer.
  std::string resolved_list() const;
  // For logs: `requested=NAME:PORT resolved=A,B verdict=VERDICT`, "-" for what is empty.
  std::string log_fields() const;
};

// One per event loop (it owns a Resolver, which is single-threaded); outlives its connections.
class Forwarder {
 public:
  // own_addresses: the daemon's listen addresses, refused unless listed; the host's other
  // addresses are asked of the kernel at each open().
  Forwarder(boost::asio::any_io_executor executor, ResolverConfig resolver,
            std::vector<boost::asio::ip::address> own_addresses);
  Resolver& resolver() { return resolver_; }

  // Steps 1-4 above. Never throws for a refused destination: the verdict says why.
  boost::asio::awaitable<ForwardResult> open(std::string name, std::uint16_t port,
                                             const Rules& rules);

 private:
  boost::asio::any_io_executor executor_;
  Resolver resolver_;
  std::vector<boost::asio::ip::address> own_;
};

}  // namespace snigate::forward
