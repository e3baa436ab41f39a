#pragma once
// What snigatectl prints, as pure functions of the daemon's replies, so the output is tested
// without a daemon.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bans/ban.h"
#include "conns/conn_registry.h"
#include "control/protocol.h"

namespace snigate::control {

using TimePoint = std::chrono::system_clock::time_point;

// "45s", "2m05s", "1h02m", "3d04h".
std::string format_duration(std::chrono::seconds d);
// "512 B", "1.5 KiB", "20.0 MiB".
std::string format_bytes(std::uint64_t bytes);
// "2026-11-23 09:15:00 UTC".
std::string format_time(TimePoint t);

// Columns: PREFIX, REMAINING (or "permanent" / "expired"), DROPS, OFFENCES, SOURCE, JAIL,
// MATCHED (the log line's time), REASON, SAMPLE (shortened). "no bans\n" when empty.
std::string format_bans_table(const std::vector<bans::BanEntry>& bans, TimePoint now);
// Columns: ID, CLIENT, PEER, LISTENER, SNI, BACKEND, [REQUESTED, RESOLVED, VERDICT,]
// UPSTREAM, STATE, UP, DOWN, AGE; the bracketed ones only when a forward connection is listed.
std::string format_conns_table(const std::vector<conns::ConnInfo>& conns, TimePoint now);
// `snigatectl top`: the busiest live connections (by bytes moved since `before`, a look at the
// connection list `elapsed` ago; a connection absent then counts from zero) and the backends
// they add up to. At most `rows` connections, then every backend with a live connection.
std::string format_top(const std::vector<conns::ConnInfo>& before,
                       const std::vector<conns::ConnInfo>& now,
                       std::chrono::duration<double> elapsed, std::size_t rows, TimePoint wall);
// One "dotted.key  value" line per leaf of the daemon's counters.
std::string format_stats(const nlohmann::json& stats);
// "acme  (rule#1: edge.toml:14:1: alpn acme-tls/1)", or why the connection would be refused.
std::string format_route(const RouteQuestion& question, const RouteAnswer& answer);
// "banned 192.0.2.7 for 1h00m (until 2026-11-23 10:15:00 UTC)" or "banned 192.0.2.7 permanently";
// the length is expires - created (expires - now when created is unset).
std::string format_ban_made(const bans::BanEntry& ban, TimePoint now);

}  // namespace snigate::control
