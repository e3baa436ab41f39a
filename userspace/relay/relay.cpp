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

const char* to_string(Fallback fallback) {
  switch (fallback) {
    case Fallback::None: return "none";
    case Fallback::SlotsExhausted: return "slots_exhausted";
    case Fallback::HandoffSkipped: return "handoff_skipped";
    case Fallback::InsertRefused: return "insert_refused";
    case Fallback::Count: break;
  }
  return "?";
}

}  // namespace snigate::relay
