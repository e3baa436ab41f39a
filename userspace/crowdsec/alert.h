#pragma once
// A snigate ban as a CrowdSec alert carrying its decision (POST /v1/alerts, as a machine):
// scenario = the jail's name ("snigatectl" for an operator's ban), the sample line in the
// alert's events, the decision's duration = what is left of the ban, origin "snigate". LAPI
// keeps the decisions an alert brings instead of running its profiles. Pure.
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "bans/ban.h"

namespace snigate::crowdsec {

// The origin of the decisions snigate pushes: `cscli decisions list --origin snigate` (or
// -a) shows them, and the other edges' bouncers show them as "crowdsec:snigate".
inline constexpr const char* kPushOrigin = "snigate";

// The alert for `entry` at `now` (its remaining time; a permanent ban goes as ten years,
// CrowdSec's decisions have no "forever").
nlohmann::json alert_json(const bans::BanEntry& entry, bans::Clock::time_point now);

}  // namespace snigate::crowdsec
