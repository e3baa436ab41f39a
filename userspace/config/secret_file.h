#pragma once
// Secrets kept in files beside the configuration (remote-ban tokens, CrowdSec API keys and
// machine passwords): read whole, refused when other users can read them.
#include <optional>
#include <string>

namespace snigate::config {

// The file's content with surrounding whitespace trimmed. nullopt (and *error set, as the
// layer's other value readers do) when the file cannot be read, is empty, or is readable by
// other users ("chmod 600 FILE").
std::optional<std::string> read_secret_file(const std::string& path, std::string* error);

}  // namespace snigate::config
