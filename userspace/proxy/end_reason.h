#pragma once
// How a connection ended, as the access log and the stats name it.
#include <array>
#include <cstddef>

#include "relay/relay.h"

namespace snigate::proxy {

enum class EndReason {
  Clean,
  ClientReset,
  UpstreamReset,
  Timeout,         // idle timeout while relaying
  PrereadTimeout,  // client too slow to send its ClientHello / request head / PROXY header
  Refused,         // every upstream server refused or timed out
  NoRoute,
  ParseError,      // not TLS / not HTTP, malformed, oversized
  Banned,
  Limit,           // max_connections reached
  Untrusted,       // a PROXY header was expected from a peer not in trusted_proxies
  ProxyError,      // malformed incoming PROXY header
  Aborted,         // the relay was cut short without a reason of its own
  DrainTimeout,    // still open when a stop's drain_timeout ran out
  // (a live connection a new ban ends is Banned, like one refused at accept)
  Error,
  Count
};

inline constexpr std::size_t kEndReasons = static_cast<std::size_t>(EndReason::Count);

const char* to_string(EndReason reason);
EndReason from_relay(relay::End end);

}  // namespace snigate::proxy
