// snigate-watch: fail2ban-style log watcher for backend hosts. `snigate-watch -c watch.toml`
// follows the configured jails and pushes their bans to the edge's remote ban channel;
// `snigate-watch test FILTER LOG` tries a filter on a log file.
#include <signal.h>

#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include "ban_queue.h"
#include "config/diag.h"
#include "control/remote_client.h"
#include "control/remote_protocol.h"
#include "test_command.h"
#include "watch/watcher.h"

namespace {

using namespace snigate;

// [edge]: where the bans go.
struct EdgeConfig {
  std::string endpoint;
  std::string token_file;
  std::chrono::milliseconds timeout{5000};
  std::string name;  // the edge's [remote_ban] name, which requests are signed for
  control::RemoteTlsFiles tls;
};

EdgeConfig parse_edge(const toml::table& root) {
  const auto* node = root.get("edge");
  if (!node || !node->as_table())
    throw config::ConfigError(
        "missing [edge] with endpoint = \"EDGE:PORT\" and token_file = \"/etc/snigate/remote.token\"");
  const auto& t = *node->as_table();
  config::check_keys(t, {"endpoint", "token_file", "timeout", "name", "tls_cert", "tls_key", "tls_ca"},
                     "[edge]");
  EdgeConfig e;
  e.endpoint = config::require_string(t, "endpoint", "[edge]");
  if (t.contains("name")) {
    e.name = config::get_string(t, "name", "");
    if (auto why = control::check_edge_name(e.name); !why.empty())
      config::fail(*t.get("name"), "[edge] name: " + why);
  }
  e.token_file = config::require_string(t, "token_file", "[edge]");
  e.timeout = config::get_duration(t, "timeout", e.timeout);
  e.tls = {config::get_string(t, "tls_cert", ""), config::get_string(t, "tls_key", ""),
           config::get_string(t, "tls_ca", "")};
  if (e.tls.cert.empty() != e.tls.key.empty() || e.tls.cert.empty() != e.tls.ca.empty())
    throw config::ConfigError(t.source(), "[edge] TLS needs all of tls_cert, tls_key (this "
                                          "host's certificate) and tls_ca (the CA that signs the "
                                          "edge's), or none of them");
  return e;
}

int run(const std::string& path, bool check_only) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw config::ConfigError(e.source(), e.description().data());
  }
  auto edge = parse_edge(root);
  auto jails = watch::parse_jails(root);
  auto watch_cfg = watch::parse_watch_config(root);
  if (jails.empty()) throw config::ConfigError(path + ": no [[jail]]: nothing to watch");
  for (const auto& j : jails) watch::jail_filter(j);  // every filter loads, or we stop here
  std::string token_error;
  auto token = control::read_token_file(edge.token_file, token_error);
  if (!token) throw std::runtime_error(edge.token_file + ": " + token_error);
  control::RemoteBanClient client(edge.endpoint, *token, edge.timeout, edge.name);
  if (edge.tls.enabled())
    if (auto why = client.use_tls(edge.tls); !why.empty()) throw std::runtime_error("[edge] " + why);
  if (check_only) {
    std::cout << path << ": " << jails.size() << " jail(s), edge " << edge.endpoint << ": OK\n";
    return 0;
  }

  // Signals are taken synchronously below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::filesystem::create_directories(watch_cfg.state_dir);
  watch_tool::BanQueue queue({watch_cfg.state_dir + "/queue.jsonl", std::chrono::seconds(1),
                              std::chrono::seconds(60)},
                             [&](const std::vector<bans::BanRequest>& b) { return client.send(b); });
  auto watcher = watch::start(
      jails, {watch_cfg.state_dir, [&](const bans::BanRequest& r) {
                spdlog::info("jail {}: ban {} for {}s", r.jail, r.prefix.str(),
                             r.duration ? r.duration->count() : 0);
                queue.push(r);
              }, {}, {}});
  if (!watcher) throw std::runtime_error(path + ": every jail is disabled");
  spdlog::info("snigate-watch: {} jail(s), pushing bans to {}", jails.size(), edge.endpoint);
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("snigate-watch: signal {}, stopping ({} ban(s) left in the queue file)", sig,
               queue.pending());
  if (queue.held())
    spdlog::warn("snigate-watch: {} ban(s) held, refused by the edge: {}; fix that and they are "
                 "sent with the next ban it accepts", queue.held(), queue.held_reason());
  watcher->stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"snigate-watch: ban offenders found in backend logs at the snigate edge"};
  std::string config_path;
  bool check = false;
  app.add_option("-c,--config", config_path, "watch.toml: [edge], [watch] and [[jail]] sections");
  app.add_flag("--check", check, "validate the configuration, load every filter, and exit");

  watch_tool::TestOptions test;
  auto* test_cmd = app.add_subcommand("test", "run one filter over a log file, like fail2ban-regex");
  test_cmd->add_option("filter", test.filter, "filter file, name under --filter-dir, or a failregex")
      ->required();
  test_cmd->add_option("logfile", test.logfile, "log file, or - for stdin")->required();
  test_cmd->add_option("--filter-dir", test.filter_dir, "where filter names are looked up");
  test_cmd->add_option("--datepattern", test.datepattern, "override the filter's datepattern");
  test_cmd->add_flag("--print-all-matched", test.print_matched);
  test_cmd->add_flag("--print-all-missed", test.print_missed);
  test_cmd->add_flag("--print-all-ignored", test.print_ignored);
  test_cmd->add_flag("--hosts", test.hosts, "print HOST<TAB>LINE per matched line, no summary");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*test_cmd) return watch_tool::run_test(test);
    if (config_path.empty()) {
      std::cerr << app.help();
      return 2;
    }
    return run(config_path, check);
  } catch (const std::exception& e) {
    std::cerr << "snigate-watch: " << e.what() << "\n";
    return 2;
  }
}
