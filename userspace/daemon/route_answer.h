#pragma once
// `snigatectl route` and `snigated --check --route`: the backend a connection would reach on a
// listener of a generation, and the rule that would choose it, by the same lookup sessions use.
#include "control/protocol.h"
#include "proxy/generation.h"

namespace snigate::daemon {

control::RouteAnswer answer_route(const proxy::Generation& generation,
                                  const control::RouteQuestion& question);

}  // namespace snigate::daemon
