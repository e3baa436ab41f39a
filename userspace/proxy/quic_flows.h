#pragma once
// What a quic listener's flows read from the daemon: the current generation's route table and
// backends for a new flow, and, when it ends, its access-log line and its counters, the same
// ones TCP connections feed.
#include <memory>
#include <optional>

#include "proxy/access_log.h"
#include "proxy/generation.h"
#include "proxy/stats.h"
#include "quic/flow.h"

namespace snigate::proxy {

EndReason end_reason(quic::FlowEnd end);

// The routes of `listener` in `generation` as a new flow keeps them; nullopt when the
// generation has no such listener.
std::optional<quic::FlowRoutes> flow_routes(std::shared_ptr<const Generation> generation,
                                            const std::string& listener, Stats& stats,
                                            AccessLog& access_log);

}  // namespace snigate::proxy
