#pragma once
// The control protocol spoken on snigated's Unix socket (`[daemon] control_socket`), by
// snigatectl and by anything else the operator scripts (`socat - UNIX:/run/snigate/control.sock`).
//
// JSON lines: the client writes one JSON object per line, the daemon answers each with one
// JSON object on one line, in order; a connection may carry any number of requests. A line is
// at most kMaxLine bytes.
//
// Requests ("cmd" selects the command; other keys as listed):
//   {"cmd":"ban","prefix":"192.0.2.7","duration":3600,"reason":"..","force":false,
//    "source":"ctl","jail":"","matched_at":1700000000,"sample":".."}
//        duration: seconds, absent or null for a permanent ban; all keys but prefix optional.
//        "id": an idempotency key (up to 128 characters): the same id again while the ban it
//        made is in force is a repeated delivery, answered with that ban, not a new offence.
//   {"cmd":"unban","prefix":"192.0.2.0/24"}
//   {"cmd":"bans"}  {"cmd":"stats"}  {"cmd":"conns"}  {"cmd":"reload"}
//   {"cmd":"reopen-logs"}  reopens the access log file at its path (log rotation), as SIGUSR1
//   {"cmd":"route","listener":"https","name":"a.example","alpn":["h2"],"client":"10.0.0.7"}
//        which backend such a connection would reach; all keys but listener optional
// Replies:
//   {"ok":true}                          unban, reload, reopen-logs
//   {"ok":true,"ban":BAN,"connections_closed":N,"stored":true}
//        ban: the ban as made, the live connections it ended, and whether the ban store took
//        it (false: disk full or read-only; the ban holds and is saved when the disk allows)
//   {"ok":true,"bans":[BAN,...]}
//   {"ok":true,"stats":{...}}            the daemon's counters, free-form
//   {"ok":true,"conns":[CONN,...]}
//   {"ok":true,"route":{"backend":"a","rule":"rule#2","detail":"edge.toml:14: alpn h2"}}
//        backend "": no route, the connection would be refused
//   {"ok":false,"error":"what went wrong, and what to do"}   any command, bad JSON included
// BAN:  {"prefix":"192.0.2.0/24","created":T,"expires":T|null,"reason":"","source":"ctl",
//        "jail":"","matched_at":T|null,"sample":"","drops":0,"offences":1}
// CONN: {"id":7,"listener":"https","protocol":"","peer":"127.0.0.1:40000","client":"192.0.2.7",
//        "server_name":"a.example","alpn":"h2","backend":"a","rule":"exact",
//        "upstream":"10.0.0.2:443",
//        "state":"relaying","relay_mode":"sockmap","requested":"","resolved":"","verdict":"",
//        "started":T,"bytes_up":N,"bytes_down":N}
//        protocol: "quic" for a UDP flow (peer: its client address:port), "" for TCP.
//        requested/resolved/verdict: forward connections only ("a.example:443",
//        "192.0.2.10,192.0.2.11", "allowed"); "" otherwise.
// T: seconds since the Unix epoch (UTC). Unknown keys are ignored, so either side may grow.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bans/ban.h"
#include "conns/conn_registry.h"

namespace snigate::control {

// `snigatectl route`: which backend a connection would reach, and what would choose it.
struct RouteQuestion {
  std::string listener;
  std::string name;               // SNI or Host; empty: none
  std::vector<std::string> alpn;  // offered protocols
  std::string client;             // real client address; empty: any (rules on it do not hold)
};
struct RouteAnswer {
  std::string error;    // unknown listener, bad address: nothing else is set
  std::string backend;  // empty: refused, no route
  std::string rule;     // "rule#2", "exact", "*.a.b", "~re", "default", "no_sni"
  std::string detail;   // the rule's conditions and file:line, when a [[rule]] chose it
};

inline constexpr const char* kControlSocketEnv = "SNIGATE_CONTROL_SOCKET";
inline constexpr std::size_t kMaxLine = 64 * 1024;

// The socket snigatectl talks to when no --socket is given: $SNIGATE_CONTROL_SOCKET, else
// the config's default `[daemon] control_socket`.
std::string default_control_socket();

nlohmann::json to_json(const bans::BanEntry& entry);
nlohmann::json to_json(const conns::ConnInfo& conn);
nlohmann::json to_json(const RouteAnswer& answer);
// The request fields of a route question (no "cmd").
nlohmann::json to_json(const RouteQuestion& question);
// The request fields of a ban (no "cmd"); `source` is included only when not empty.
nlohmann::json to_json(const bans::BanRequest& request);

// Decoders return nullopt and set `error` (naming the key) on a malformed object.
std::optional<bans::BanEntry> ban_entry_from_json(const nlohmann::json& j, std::string& error);
std::optional<conns::ConnInfo> conn_from_json(const nlohmann::json& j, std::string& error);
std::optional<bans::BanRequest> ban_request_from_json(const nlohmann::json& j, std::string& error);
std::optional<RouteQuestion> route_question_from_json(const nlohmann::json& j, std::string& error);
std::optional<RouteAnswer> route_answer_from_json(const nlohmann::json& j, std::string& error);

std::vector<bans::BanEntry> ban_entries_from_json(const nlohmann::json& array, std::string& error);
std::vector<conns::ConnInfo> conns_from_json(const nlohmann::json& array, std::string& error);

nlohmann::json error_reply(const std::string& message);

}  // namespace snigate::control
