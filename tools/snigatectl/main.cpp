// snigatectl: ban, unban, list bans, stats, connections, top, reload and log reopening of a running
// snigated, through its control socket (protocol: control/protocol.h).
// Exit status: 0 done, 1 refused by the daemon or daemon unreachable, 2 usage error.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "config/config.h"
#include "config/diag.h"
#include "control/control_client.h"
#include "control/format.h"
#include "control/protocol.h"
#include "net/prefix.h"
#include "snigate/version.h"

namespace {

using namespace snigate;
using nlohmann::json;

constexpr int kOk = 0, kFailed = 1, kUsage = 2;

struct Args {
  std::string socket = control::default_control_socket();
  std::string config;  // snigated's config file: its [daemon] control_socket, unless --socket
  std::string target;
  std::string duration;
  std::string reason;
  std::string source = "ctl";
  std::string jail;
  bool force = false;
  bool json = false;
  control::RouteQuestion route;
  double interval = 1.0;  // top
  unsigned count = 0;
  std::size_t rows = 10;
};

int usage_error(const std::string& message) {
  std::cerr << "snigatectl: " << message << "\n";
  return kUsage;
}

// Sends `req`; prints the daemon's refusal or the reason it cannot be reached.
std::optional<json> call(const Args& args, const json& req) {
  std::string error;
  auto reply = control::ControlClient(args.socket).request(req, error);
  if (!reply) {
    std::cerr << "snigatectl: " << error << "\n";
    return std::nullopt;
  }
  if (!reply->value("ok", false)) {
    std::cerr << "snigatectl: " << reply->value("error", std::string("the daemon refused")) << "\n";
    return std::nullopt;
  }
  return reply;
}

std::string dump(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace); }

int ban(const Args& args) {
  std::string error;
  auto prefix = net::Prefix::parse(args.target, &error);
  if (!prefix) return usage_error(error);
  bans::BanRequest request;
  request.prefix = *prefix;
  if (!args.duration.empty()) {
    try {
      auto d = std::chrono::duration_cast<std::chrono::seconds>(config::parse_duration(args.duration));
      if (d.count() < 1) return usage_error("--for must be at least 1s (omit it for a permanent ban)");
      request.duration = d;
    } catch (const std::invalid_argument& e) {
      return usage_error(std::string("--for: ") + e.what());
    }
  }
  request.reason = args.reason;
  request.source = args.source;
  request.jail = args.jail;
  request.force = args.force;
  json req = control::to_json(request);
  req["cmd"] = "ban";
  auto reply = call(args, req);
  if (!reply) return kFailed;
  std::string decode_error;
  auto entry = reply->contains("ban") ? control::ban_entry_from_json((*reply)["ban"], decode_error) : std::nullopt;
  std::cout << (entry ? control::format_ban_made(*entry, std::chrono::system_clock::now())
                      : "banned " + prefix->str());
  if (auto closed = reply->value("connections_closed", 0); closed > 0)
    std::cout << "; ended " << closed << " live connection" << (closed == 1 ? "" : "s");
  std::cout << "\n";
  if (!reply->value("stored", true))
    std::cerr << "snigatectl: warning: the ban is in force but the ban store could not save it "
                 "(disk full or read-only?); snigated retries and logs the cause\n";
  return kOk;
}

int unban(const Args& args) {
  std::string error;
  auto prefix = net::Prefix::parse(args.target, &error);
  if (!prefix) return usage_error(error);
  auto reply = call(args, json{{"cmd", "unban"}, {"prefix", prefix->str()}});
  if (!reply) return kFailed;
  std::cout << "unbanned " << prefix->str() << "\n";
  return kOk;
}

int list_bans(const Args& args) {
  auto reply = call(args, json{{"cmd", "bans"}});
  if (!reply) return kFailed;
  const json& list = (*reply)["bans"];
  if (args.json) return std::cout << dump(list) << "\n", kOk;
  std::string error;
  auto entries = control::ban_entries_from_json(list, error);
  if (!error.empty()) return std::cerr << "snigatectl: bad reply from snigated: " << error << "\n", kFailed;
  std::cout << control::format_bans_table(entries, std::chrono::system_clock::now());
  return kOk;
}

int stats(const Args& args) {
  auto reply = call(args, json{{"cmd", "stats"}});
  if (!reply) return kFailed;
  std::cout << (args.json ? dump((*reply)["stats"]) + "\n" : control::format_stats((*reply)["stats"]));
  return kOk;
}

int list_conns(const Args& args) {
  auto reply = call(args, json{{"cmd", "conns"}});
  if (!reply) return kFailed;
  const json& list = (*reply)["conns"];
  if (args.json) return std::cout << dump(list) << "\n", kOk;
  std::string error;
  auto conns = control::conns_from_json(list, error);
  if (!error.empty()) return std::cerr << "snigatectl: bad reply from snigated: " << error << "\n", kFailed;
  std::cout << control::format_conns_table(conns, std::chrono::system_clock::now());
  return kOk;
}

// Looks at the connection list every interval and prints the busiest since the last look,
// over the previous screen on a terminal.
int top(const Args& args) {
  auto look = [&](std::vector<conns::ConnInfo>& out) {
    auto reply = call(args, json{{"cmd", "conns"}});
    if (!reply) return false;
    std::string error;
    out = control::conns_from_json((*reply)["conns"], error);
    if (!error.empty()) std::cerr << "snigatectl: bad reply from snigated: " << error << "\n";
    return error.empty();
  };
  const bool terminal = ::isatty(STDOUT_FILENO);
  const auto interval = std::chrono::duration<double>(args.interval);
  std::vector<conns::ConnInfo> before, now;
  if (!look(before)) return kFailed;
  auto then = std::chrono::steady_clock::now();
  for (unsigned n = 0; args.count == 0 || n < args.count; ++n) {
    std::this_thread::sleep_for(interval);
    if (!look(now)) return kFailed;
    const auto at = std::chrono::steady_clock::now();
    std::cout << (terminal ? "\033[H\033[2J" : n ? "\n" : "")
              << control::format_top(before, now, at - then, args.rows,
                                     std::chrono::system_clock::now())
              << std::flush;
    before = std::move(now);
    then = at;
  }
  return kOk;
}

int reload(const Args& args) {
  if (!call(args, json{{"cmd", "reload"}})) return kFailed;
  std::cout << "configuration reloaded\n";
  return kOk;
}

int reopen_logs(const Args& args) {
  if (!call(args, json{{"cmd", "reopen-logs"}})) return kFailed;
  std::cout << "logs reopened\n";
  return kOk;
}

int route(const Args& args) {
  auto reply = call(args, json{{"cmd", "route"}, {"listener", args.route.listener},
                               {"name", args.route.name}, {"alpn", args.route.alpn},
                               {"client", args.route.client}});
  if (!reply) return kFailed;
  if (args.json) return std::cout << dump((*reply)["route"]) << "\n", kOk;
  std::string error;
  auto answer = control::route_answer_from_json((*reply)["route"], error);
  if (!answer) return std::cerr << "snigatectl: bad reply from snigated: " << error << "\n", kFailed;
  std::cout << control::format_route(args.route, *answer);
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  CLI::App app{"Controls a running snigated through its control socket."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("snigatectl ") + snigate::kVersion +
                                        " (commit " + snigate::kGitCommit + ")");
  const std::string socket_help =
      "control socket of snigated (default: $SNIGATE_CONTROL_SOCKET, else " +
      config::DaemonConfig{}.control_socket + ")";
  const std::string config_help =
      "snigated's configuration file: talk to the control_socket it names (--socket wins)";
  std::vector<CLI::Option*> socket_options{app.add_option("--socket", args.socket, socket_help)};
  app.add_option("-c,--config", args.config, config_help);

  auto sub = [&](const char* name, const char* help) {
    auto* s = app.add_subcommand(name, help);
    socket_options.push_back(s->add_option("--socket", args.socket, socket_help));
    s->add_option("-c,--config", args.config, config_help);
    return s;
  };
  auto* ban_cmd = sub("ban", "ban an address or CIDR prefix");
  ban_cmd->add_option("prefix", args.target, "ADDR or CIDR, e.g. 192.0.2.7 or 2001:db8::/64")->required();
  ban_cmd->add_option("--for", args.duration, "how long, e.g. 10m, 1h, 2d (default: permanent)");
  ban_cmd->add_option("--reason", args.reason, "why, shown in `snigatectl bans`");
  ban_cmd->add_flag("--force", args.force, "ban even inside a configured `ignore` network");
  ban_cmd->add_option("--source", args.source, "who asks, e.g. fail2ban (default: ctl)");
  ban_cmd->add_option("--jail", args.jail, "the jail that found the offence");
  auto* unban_cmd = sub("unban", "lift a ban");
  unban_cmd->add_option("prefix", args.target, "ADDR or CIDR, as listed by `snigatectl bans`")->required();
  auto* bans_cmd = sub("bans", "list bans with expiry, drops and reason");
  bans_cmd->add_flag("--json", args.json, "print JSON");
  auto* stats_cmd = sub("stats", "the daemon's counters");
  stats_cmd->add_flag("--json", args.json, "print JSON");
  auto* conns_cmd = sub("conns", "live connections");
  conns_cmd->add_flag("--json", args.json, "print JSON");
  auto* top_cmd = sub("top", "the busiest connections and backends, refreshed each interval");
  top_cmd->add_option("--interval", args.interval, "seconds between looks (default 1)")
      ->check(CLI::Range(0.05, 3600.0));
  top_cmd->add_option("--count", args.count, "looks to print, then exit (default: until ^C)");
  top_cmd->add_option("--rows", args.rows, "connections listed (default 10)");
  auto* reload_cmd = sub("reload", "re-read the configuration");
  auto* reopen_cmd = sub("reopen-logs", "reopen the access log file (after logrotate renamed it)");
  auto* route_cmd = sub("route", "which backend a connection would reach, and the rule choosing it");
  route_cmd->add_option("listener", args.route.listener, "listener name")->required();
  route_cmd->add_option("name", args.route.name, "SNI or Host (default: none)");
  route_cmd->add_option("--alpn", args.route.alpn, "offered ALPN protocols, e.g. h2,http/1.1")
      ->delimiter(',');
  route_cmd->add_option("--client", args.route.client, "the client's address");
  route_cmd->add_flag("--json", args.json, "print JSON");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kOk : kUsage;
  }
  const bool socket_given = std::any_of(socket_options.begin(), socket_options.end(),
                                        [](const CLI::Option* o) { return o->count() > 0; });
  if (!args.config.empty() && !socket_given) {
    try {
      args.socket = config::load_file(args.config).daemon.control_socket;
    } catch (const std::exception& e) {
      return usage_error(std::string("cannot take the control socket from ") + args.config +
                         ": " + e.what() + " (or pass --socket PATH)");
    }
  }
  if (args.socket.empty()) return usage_error("--socket needs a path");
  if (ban_cmd->parsed()) return ban(args);
  if (unban_cmd->parsed()) return unban(args);
  if (bans_cmd->parsed()) return list_bans(args);
  if (stats_cmd->parsed()) return stats(args);
  if (conns_cmd->parsed()) return list_conns(args);
  if (top_cmd->parsed()) return top(args);
  if (reload_cmd->parsed()) return reload(args);
  if (reopen_cmd->parsed()) return reopen_logs(args);
  if (route_cmd->parsed()) return route(args);
  return kUsage;
}
