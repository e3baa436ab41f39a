#pragma once
// The watchers' state files (positions, failures counting) name log files and clients, as the
// logs they come from do: created readable by their owner only, whatever the umask.
#include <string>

namespace snigate::watch {

// Creates `path`, or empties it, with mode 0600; false when it cannot.
bool create_private(const std::string& path);

}  // namespace snigate::watch
