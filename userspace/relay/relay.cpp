#include "relay/relay.h"

namespace snigate::relay {

const char* to_string(End end) {
  switch (end) {
    case End::Clean: return "clean";
    case End::ClientReset: return "client_reset";
    case End::UpstreamReset: return "upstream_reset";
    case End::IdleTimeout: return "timeout";
    case End::Aborted: return "aborted";
    case End::Error: return "error";
  }
  return "?";
}

}  // namespace snigate::relay
