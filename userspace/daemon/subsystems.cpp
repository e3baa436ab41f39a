#include "daemon/subsystems.h"

#include "daemon/route_answer.h"

#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "bans/ban_manager.h"
#include "bans/ban_store.h"
#include "bans/fake_ban_map.h"
#include "control/control_server.h"
#include "control/remote_config.h"
#include "control/remote_server.h"
#include "config/endpoint.h"
#include "config/server.h"
#include "crowdsec/alert_pusher.h"
#include "crowdsec/bouncer.h"
#include "daemon/figures.h"
#include "kernel/kernel_features.h"
#include "metrics/metrics_config.h"
#include "metrics/metrics_server.h"
#include "watch/watcher.h"

namespace snigate::daemon {

namespace {

// The BPF maps need CAP_BPF and a bpffs; without them bans still hold at accept time, in an
// in-memory trie with the same longest-match and expiry rules, and still persist in the store.
// A kernel without the ban programs' needs (kernel_features.h) goes there without trying.
std::unique_ptr<bans::BanManager> open_bans(const bans::BansConfig& cfg, Daemon& daemon) {
  std::string error;
  std::string bpf_error = kernel::KernelFeatures::missing(daemon.kernel().ban_programs);
  if (bpf_error.empty()) {
    if (auto manager = bans::BanManager::open(cfg, &daemon.registry(), error)) return manager;
    bpf_error = error;
    error.clear();
  }
  auto store = bans::BanStore::open(cfg.store, error);
  if (!store) throw std::runtime_error("[bans] " + error);
  auto manager = bans::BanManager::create(cfg, std::make_unique<bans::FakeBanMap>(), std::move(store),
                                     std::make_shared<bans::SystemBanClock>(), &daemon.registry(),
                                     error);
  if (!manager) throw std::runtime_error("[bans] " + error);
  spdlog::warn("bans: BPF ban maps unavailable ({}); bans are enforced at accept time only, "
               "not by XDP/TC", bpf_error);
  return manager;
}

// The one place the figures are gathered: `snigatectl stats` and GET /metrics both show this.
Figures collect(const Subsystems& s) {
  Figures f;
  f.stats = s.daemon.stats();
  const auto g = s.daemon.current();
  f.relay_requested = s.daemon.requested_relay();
  f.relay_mode = g->relay->mode();
  f.pipes = relay::pipe_figures();
  // One row per (backend, server): a server listed twice in a backend is one label set.
  std::map<std::pair<std::string, std::string>, bool> health;
  for (const auto& [name, b] : g->backends)
    for (std::size_t i = 0; i < b.config->servers.size(); ++i)
      health[{name, config::address(b.config->servers[i])}] |= b.pool->is_up(i);
  for (const auto& [key, up] : health) f.health.push_back({key.first, key.second, up});
  // Route regexes that gave up at the match limit (config/route_regex.h), in the tables of
  // the running configuration; a table shared by listeners is counted once.
  std::set<const routing::RouteTable*> tables;
  for (const auto& l : g->listeners)
    if (l.table && tables.insert(l.table.get()).second)
      f.regex_limit_hits += l.table->regex_limit_hits();
  if (s.bans) {
    // The XDP/TC counters are per-CPU array slots read with one syscall: the programs never
    // wait for a reader.
    f.bans = s.bans->totals();
    f.enforcement = s.bans->enforcement();
  }
  if (s.jails) f.jails = s.jails->figures();
  if (s.control) f.control_refused = s.control->refused();
  if (s.remote) f.remote_refused = s.remote->refused();
  for (auto& [name, address] : s.daemon.bound_listeners()) f.bound[name] = address;
  return f;
}

// `pusher`: where the jails' bans go as CrowdSec alerts (null: nowhere).
std::unique_ptr<watch::Watcher> start_jails(const toml::table& raw, bans::BanManager* manager,
                                            crowdsec::AlertPusher* pusher) {
  auto sink = [manager, pusher](const bans::BanRequest& request) {
    auto outcome = manager->ban(request);
    if (!outcome.ok) spdlog::warn("jail {}: ban of {} refused: {}", request.jail,
                                  request.prefix.str(), outcome.error);
    else if (pusher) pusher->push(outcome.entry);
  };
  auto history = [manager](const net::Prefix& prefix) { return manager->history_count(prefix); };
  auto active = [manager](const boost::asio::ip::address& client) { return manager->banned(client); };
  return watch::start_from_config(raw, sink, history, active);
}

control::ControlHandlers handlers(Subsystems& s) {
  control::ControlHandlers h;
  h.stats = [&s] { return to_json(collect(s)); };
  h.conns = [&s] { return s.daemon.registry().snapshot(); };
  h.reload = [&s]() -> std::string {
    std::string error;
    if (!s.daemon.reload(&error)) return error + " (the running configuration is kept)";
    if (!s.bans) return {};
    // Jails follow the new file. Their filters are checked before the running jails stop
    // (which saves their positions, so the new ones go on from there): a rejected [[jail]]
    // leaves the running jails as they were.
    const auto& raw = s.daemon.current()->config->raw;
    try {
      for (const auto& jail : watch::parse_jails(raw))
        if (jail.enabled) watch::jail_filter(jail);
      s.jails.reset();
      s.jails = start_jails(raw, s.bans.get(), s.push_jails ? s.crowdsec_source.get() : nullptr);
    } catch (const std::exception& e) {
      spdlog::error("reload: [[jail]] rejected, the running jails are kept: {}", e.what());
      return std::string("listeners and routes reloaded, but [[jail]] was rejected (the running "
                         "jails are kept): ") + e.what();
    }
    return {};
  };
  h.reopen_logs = [&s] { return s.daemon.reopen_logs(); };
  h.route = [&s](const control::RouteQuestion& q) { return answer_route(*s.daemon.current(), q); };
  if (!s.bans) {
    auto off = [](const char* what) {
      return std::string(what) + ": bans are off in this daemon ([bans] enabled = false)";
    };
    h.ban = [off](const bans::BanRequest&) {
      bans::BanOutcome o;
      o.error = off("ban");
      return o;
    };
    h.unban = [off](const net::Prefix&) -> bool { throw std::runtime_error(off("unban")); };
    h.list_bans = [] { return std::vector<bans::BanEntry>{}; };
    return h;
  }
  h.ban = [&s](const bans::BanRequest& r) {
    auto outcome = s.bans->ban(r);
    // snigatectl's bans only: the remote channel shares this handler, and its bans are the
    // watchers' (source "remote:..."), which a site pushes from where they are made.
    if (outcome.ok && s.push_ctl && s.crowdsec_source && r.source == "ctl")
      s.crowdsec_source->push(outcome.entry);
    return outcome;
  };
  h.unban = [&s](const net::Prefix& p) { return s.bans->unban(p); };
  h.list_bans = [&s] { return s.bans->list(); };
  return h;
}

}  // namespace

Subsystems::Subsystems(Daemon& d) : daemon(d) {}

Subsystems::~Subsystems() {
  metrics.reset();
  crowdsec.reset();
  jails.reset();
  remote.reset();
  control.reset();
  crowdsec_source.reset();  // after every producer that pushes to it (jails, snigatectl)
  daemon.set_ban_check(nullptr);
  bans.reset();
}

std::unique_ptr<Subsystems> start_subsystems(Daemon& daemon, const config::Config& config) {
  auto s = std::make_unique<Subsystems>(daemon);
  auto bans_cfg = bans::parse_bans_config(config.raw);
  auto remote_cfg = control::parse_remote_ban_config(config.raw);
  auto metrics_cfg = metrics::parse_metrics_config(config.raw);
  auto crowdsec_cfg = crowdsec::parse_crowdsec_config(config.raw);
  if (crowdsec_cfg.enabled && !bans_cfg.enabled)
    throw std::runtime_error("[crowdsec] needs bans on ([bans] enabled = false)");
  if (bans_cfg.enabled) {
    // Its sweeper thread starts in start_threads(), after a privilege drop.
    auto opened = bans_cfg;
    opened.sweep_interval = std::chrono::seconds(0);
    s->bans = open_bans(opened, daemon);
    s->sweep_interval = bans_cfg.sweep_interval;
    daemon.set_ban_check(s->bans.get());
  } else {
    spdlog::info("bans: off ([bans] enabled = false)");
  }

  // Read now, with its key files, which the user the daemon drops to may not read; its
  // threads start in start_threads().
  if (crowdsec_cfg.enabled) s->crowdsec_cfg = std::move(crowdsec_cfg);
  std::string error;
  s->control = control::ControlServer::start(daemon.control_context(),
                                             config.daemon.control_socket, handlers(*s), error);
  if (!s->control) throw std::runtime_error(error);

  if (remote_cfg.enabled) {
    if (!s->bans) throw std::runtime_error("[remote_ban] needs bans on ([bans] enabled = false)");
    remote_cfg.replay_file =
        (std::filesystem::path(bans_cfg.store).parent_path() / "remote-replay").string();
    s->remote = control::RemoteBanServer::start(daemon.control_context(), remote_cfg,
                                                handlers(*s), error);
    if (!s->remote) throw std::runtime_error(error);
  } else {
    spdlog::info("remote ban: off (no [remote_ban] listen), so no TCP port takes bans");
  }

  if (metrics_cfg.enabled) {
    s->metrics = metrics::MetricsServer::start(
        daemon.control_context(), metrics_cfg.listen,
        [&s = *s] { return to_prometheus(collect(s)); }, error);
    if (!s->metrics) throw std::runtime_error(error);
    spdlog::info("metrics: serving http://{}/metrics",
                 config::format_endpoint(s->metrics->local_endpoint()));
  }
  return s;
}

std::vector<std::string> Subsystems::owned_files(const config::Config& config) const {
  std::vector<std::string> files{config.daemon.control_socket};
  if (config.daemon.access_log != "stdout") files.push_back(config.daemon.access_log);
  if (bans) {
    const std::string store = bans::parse_bans_config(config.raw).store;
    files.insert(files.end(), {store, store + "-wal", store + "-shm"});
  }
  return files;
}

std::vector<std::string> Subsystems::bound() const {
  std::vector<std::string> out;
  if (remote) out.push_back("remote_ban=" + config::format_endpoint(remote->local_endpoint()));
  if (metrics) out.push_back("metrics=" + config::format_endpoint(metrics->local_endpoint()));
  return out;
}

void Subsystems::start_threads(const config::Config& config) {
  // The CrowdSec source before the jails and snigatectl, which push to it (the control
  // socket serves only once the daemon does, after this).
  if (crowdsec_cfg && !crowdsec_cfg->machine_id.empty()) {
    const auto& c = *crowdsec_cfg;
    crowdsec_source = std::make_unique<crowdsec::AlertPusher>(c.lapi, c.machine_id,
                                                              c.machine_password);
    push_ctl = c.push_ctl;
    push_jails = c.push_jails;
    spdlog::info("crowdsec: pushing {}{}{} bans to {} as machine '{}'",
                 c.push_jails ? "the jails'" : "", c.push_jails && c.push_ctl ? " and " : "",
                 c.push_ctl ? "snigatectl's" : "", c.lapi.text, c.machine_id);
  }
  if (bans) {
    bans->start_sweeper(sweep_interval);
    // Jails open their logs as the user the daemon runs as, as they will at each reload.
    jails = start_jails(config.raw, bans.get(), push_jails ? crowdsec_source.get() : nullptr);
    if (jails) spdlog::info("jails: {} running", jails->jails().size());
  } else if (!watch::parse_jails(config.raw).empty()) {
    spdlog::warn("jails: not started, they ban and bans are off ([bans] enabled = false)");
  }
  if (crowdsec_cfg && !crowdsec_cfg->api_key.empty())
    crowdsec = std::make_unique<crowdsec::Bouncer>(std::move(*crowdsec_cfg), *bans);
  crowdsec_cfg.reset();
}

}  // namespace snigate::daemon
