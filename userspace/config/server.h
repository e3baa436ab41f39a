#pragma once
// One entry of a backend's `servers`: "host:port [weight=N] [backup] [max_fails=N]
// [fail_timeout=DURATION] [source=ADDR]", nginx's upstream `server` options and HAProxy's
// `source`.
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace snigate::config {

// On failure returns nullopt and sets *error naming the bad part.
std::optional<ServerConfig> parse_server(std::string_view text, std::string* error);

// "host:port" ("[v6]:port") without the options but source=ADDR: how logs and metric labels
// name a server.
std::string address(const ServerConfig& server);

}  // namespace snigate::config
