#pragma once
// The relay modes, in the configuration's and the access log's words. A header of its own,
// with no dependency, so config and the tools name a mode without linking any relay (the
// sockmap relay pulls in libbpf).
#include <optional>
#include <string_view>

namespace snigate::relay {

enum class Mode { Auto, Sockmap, Splice, Copy };

constexpr std::optional<Mode> parse_mode(std::string_view text) {
  if (text == "auto") return Mode::Auto;
  if (text == "sockmap") return Mode::Sockmap;
  if (text == "splice") return Mode::Splice;
  if (text == "copy") return Mode::Copy;
  return std::nullopt;
}

constexpr const char* to_string(Mode mode) {
  switch (mode) {
    case Mode::Auto: return "auto";
    case Mode::Sockmap: return "sockmap";
    case Mode::Splice: return "splice";
    case Mode::Copy: return "copy";
  }
  return "?";
}

}  // namespace snigate::relay
