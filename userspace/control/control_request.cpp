#include "control/control_server.h"

#include "control/protocol.h"

// The control protocol's requests, answered without any I/O: the part of the control socket
// that hostile bytes reach, kept apart so a fuzzer can drive it (tests/fuzz/fuzz_control.cpp).
namespace snigate::control {

using nlohmann::json;

namespace {

json ok_reply() { return json{{"ok", true}}; }

json dispatch(const ControlHandlers& h, const std::string& cmd, const json& req) {
  auto missing = [&] { return error_reply("this daemon does not support '" + cmd + "'"); };
  if (cmd == "ban") {
    if (!h.ban) return missing();
    std::string error;
    auto request = ban_request_from_json(req, error);
    if (!request) return error_reply("ban: " + error);
    if (request->source.empty()) request->source = "ctl";
    auto result = h.ban(*request);
    if (!result.ok) return error_reply(result.error.empty() ? "ban refused" : result.error);
    return json{{"ok", true},
                {"ban", to_json(result.entry)},
                {"connections_closed", result.connections_closed},
                {"stored", result.stored}};
  }
  if (cmd == "unban") {
    if (!h.unban) return missing();
    auto it = req.find("prefix");
    if (it == req.end() || !it->is_string()) return error_reply("unban: 'prefix' is required");
    std::string error;
    auto prefix = net::Prefix::parse(it->get<std::string>(), &error);
    if (!prefix) return error_reply("unban: " + error);
    if (!h.unban(*prefix)) return error_reply("no ban on " + prefix->str() + " (see snigatectl bans)");
    return ok_reply();
  }
  if (cmd == "bans") {
    if (!h.list_bans) return missing();
    json list = json::array();
    for (const auto& e : h.list_bans()) list.push_back(to_json(e));
    return json{{"ok", true}, {"bans", std::move(list)}};
  }
  if (cmd == "stats") {
    if (!h.stats) return missing();
    return json{{"ok", true}, {"stats", h.stats()}};
  }
  if (cmd == "conns") {
    if (!h.conns) return missing();
    json list = json::array();
    for (const auto& c : h.conns()) list.push_back(to_json(c));
    return json{{"ok", true}, {"conns", std::move(list)}};
  }
  if (cmd == "reload") {
    if (!h.reload) return missing();
    auto error = h.reload();
    return error.empty() ? ok_reply() : error_reply("reload failed: " + error);
  }
  if (cmd == "reopen-logs") {
    if (!h.reopen_logs) return missing();
    auto error = h.reopen_logs();
    return error.empty() ? ok_reply() : error_reply("reopen-logs failed: " + error);
  }
  if (cmd == "route") {
    if (!h.route) return missing();
    std::string error;
    auto question = route_question_from_json(req, error);
    if (!question) return error_reply("route: " + error);
    RouteAnswer a = h.route(*question);
    if (!a.error.empty()) return error_reply("route: " + a.error);
    return json{{"ok", true}, {"route", to_json(a)}};
  }
  return error_reply("unknown command '" + cmd +
                     "' (known: ban, unban, bans, stats, conns, reload, reopen-logs, route)");
}

}  // namespace

json handle_request(const ControlHandlers& handlers, std::string_view line) {
  json req = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded()) return error_reply("bad request: not a JSON object on one line");
  if (!req.is_object()) return error_reply("bad request: expected a JSON object");
  auto cmd = req.find("cmd");
  if (cmd == req.end() || !cmd->is_string()) return error_reply("bad request: 'cmd' is required");
  auto name = cmd->get<std::string>();
  try {
    return dispatch(handlers, name, req);
  } catch (const std::exception& e) {
    return error_reply(name + " failed inside the daemon: " + e.what());
  }
}

}  // namespace snigate::control
