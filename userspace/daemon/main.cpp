// snigated: the edge daemon. Loads the configuration (a file, or the embedded demo), checks it
// or runs it until SIGTERM/SIGINT; SIGHUP reloads.
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "config/config.h"
#include "control/format.h"
#include "daemon/check.h"
#include "daemon/route_answer.h"
#include "daemon/daemon.h"
#include "daemon/privileges.h"
#include "daemon/service_notify.h"
#include "daemon/subsystems.h"
#include "proxy/generation.h"
#include "relay/relay.h"
#include "snigate/version.h"

namespace {

snigate::config::Config load(const std::string& path) {
  using namespace snigate::config;
  return path.empty() ? load_string(embedded_default(), "<embedded default>") : load_file(path);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace snigate;
  CLI::App app{"snigated: steers TLS by SNI and HTTP by Host to backends, with PROXY protocol"};
  std::string config_path;
  bool check = false;
  std::string relay_text;
  std::string log_level;
  app.add_option("-c,--config", config_path, "TOML configuration file (default: the embedded "
                 "demo configuration)");
  app.add_flag("--check", check, "Validate the configuration, print what it sets up, and exit");
  app.add_option("--relay", relay_text, "Override [daemon] relay")
      ->check(CLI::IsMember({"auto", "sockmap", "splice", "copy"}));
  app.add_option("--log-level", log_level, "Override [daemon] log_level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  std::vector<std::string> route;
  std::vector<std::string> route_alpn;
  std::string route_client;
  auto* route_opt = app.add_option("--route", route, "With --check: LISTENER [NAME]: print the "
                                   "backend such a connection reaches and the rule that chooses it")
                        ->expected(1, 2)
                        ->needs("--check");
  app.add_option("--alpn", route_alpn, "With --route: offered ALPN protocols (P,Q)")
      ->delimiter(',')
      ->needs(route_opt);
  app.add_option("--client", route_client, "With --route: the client's address")->needs(route_opt);
  app.set_version_flag("--version", std::string("snigated ") + kVersion + " (commit " +
                                        kGitCommit + ")");
  CLI11_PARSE(app, argc, argv);

  std::optional<relay::Mode> relay_override;
  if (!relay_text.empty()) relay_override = relay::parse_mode(relay_text);

  std::shared_ptr<config::Config> cfg;
  try {
    cfg = std::make_shared<config::Config>(load(config_path));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  if (check && !route.empty()) {
    control::RouteQuestion q{route[0], route.size() > 1 ? route[1] : "", route_alpn, route_client};
    try {
      control::RouteAnswer a = daemon::answer_route(*proxy::build_generation(cfg), q);
      if (!a.error.empty()) {
        std::fprintf(stderr, "route: %s\n", a.error.c_str());
        return 1;
      }
      std::fputs(control::format_route(q, a).c_str(), stdout);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
    return 0;
  }
  if (check) {
    try {
      std::fputs(daemon::check_config(cfg, relay_override).c_str(), stdout);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(log_level.empty() ? cfg->daemon.log_level
                                                              : log_level));
  try {
    // A user that does not exist fails the start before anything is bound or loaded.
    if (!cfg->daemon.user.empty()) daemon::resolve_account(cfg->daemon.user, cfg->daemon.group);
    daemon::Daemon d(cfg, config_path, relay_override);
    // Bans first: nothing is accepted before the ban maps are loaded and reconciled with the
    // store, or a banned client would be served while a large store loads.
    auto subsystems = daemon::start_subsystems(d, *cfg);
    d.bind();
    // Everything that needs root is open now; every thread starts after the drop.
    daemon::drop_privileges({cfg->daemon.user, cfg->daemon.group,
                             d.current()->relay->mode() == relay::Mode::Sockmap,
                             subsystems->owned_files(*cfg)});
    subsystems->start_threads(*cfg);
    d.serve();
    // One line that says where everything listens, ports chosen by the kernel included, so a
    // supervisor or a test need not read the lines before it.
    auto bound = d.bound_addresses();
    for (auto& b : subsystems->bound()) bound.push_back(std::move(b));
    spdlog::info("snigated ready (pid {}); bound: {}", ::getpid(), fmt::join(bound, " "));
    daemon::service::ready();
    d.run();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  return 0;
}
