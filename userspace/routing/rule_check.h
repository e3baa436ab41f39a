#pragma once
// Route rules that can never match, for `snigated --check`: a mistake in a table is a silent
// misroute at run time, so it is said before the daemon starts.
#include <string>
#include <vector>

#include "config/config.h"

namespace snigate::routing {

// Warnings "FILE:LINE:COL: ...": a rule that an earlier rule of its table always takes first
// (every condition of the earlier one holds whenever the later one's do), and a rule on ALPN in
// a table only http listeners use (an HTTP request offers no ALPN).
std::vector<std::string> unreachable_rules(const config::Config& config);

}  // namespace snigate::routing
