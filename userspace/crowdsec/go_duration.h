#pragma once
// Durations as CrowdSec's Local API writes them: Go's time.Duration.String(), such as
// "3h59m58.5s", "59m59.040721152s", "-11.681365ms", "0s". Pure, for the bouncer and tests.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace snigate::crowdsec {

// Go's grammar (time.ParseDuration): an optional sign, then one or more decimal numbers each
// with a unit (ns, us, µs, ms, s, m, h); "0" alone is zero. Truncated to milliseconds.
// nullopt (and `error` set) on anything else, or beyond a hundred years either way.
std::optional<std::chrono::milliseconds> parse_go_duration(std::string_view text,
                                                           std::string* error = nullptr);

}  // namespace snigate::crowdsec
