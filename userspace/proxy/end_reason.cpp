#include "proxy/end_reason.h"

namespace snigate::proxy {

const char* to_string(EndReason reason) {
  switch (reason) {
    case EndReason::Clean: return "clean";
    case EndReason::ClientReset: return "client_reset";
    case EndReason::UpstreamReset: return "upstream_reset";
    case EndReason::Timeout: return "timeout";
    case EndReason::PrereadTimeout: return "preread_timeout";
    case EndReason::Refused: return "refused";
    case EndReason::NoRoute: return "no_route";
    case EndReason::ParseError: return "parse_error";
    case EndReason::Banned: return "banned";
    case EndReason::Limit: return "limit";
    case EndReason::Untrusted: return "untrusted_proxy";
    case EndReason::ProxyError: return "proxy_error";
    case EndReason::Aborted: return "aborted";
    case EndReason::DrainTimeout: return "drain_timeout";
    case EndReason::Error: return "error";
    case EndReason::Count: break;
  }
  return "?";
}

EndReason from_relay(relay::End end) {
  switch (end) {
    case relay::End::Clean: return EndReason::Clean;
    case relay::End::ClientReset: return EndReason::ClientReset;
    case relay::End::UpstreamReset: return EndReason::UpstreamReset;
    case relay::End::IdleTimeout: return EndReason::Timeout;
    case relay::End::Aborted: return EndReason::Aborted;
    case relay::End::Error: return EndReason::Error;
  }
  return EndReason::Error;
}

}  // namespace snigate::proxy
