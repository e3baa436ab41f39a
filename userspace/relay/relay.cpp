#include "relay/relay.h"

namespace snigate::relay {

std::optional<Mode> parse_mode(std::string_view text) {
  if (text == "auto") return Mode::Auto;
  if (text == "sockmap") return Mode::Sockmap;
  if (text == "splice") return Mode::Splice;
  if (text == "copy") return Mode::Copy;
  return std::nullopt;
}

const char* to_string(Mode mode) {
  switch (mode) {
    case Mode::Auto: return "auto";
    case Mode::Sockmap: return "sockmap";
    case Mode::Splice: return "splice";
    case Mode::Copy: return "copy";
  }
  return "?";
}

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
