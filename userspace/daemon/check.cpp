#include "daemon/check.h"

#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "bans/ban_manager.h"
#include "config/diag.h"
#include "config/endpoint.h"
#include "config/route_regex.h"
#include "control/remote_config.h"
#include "crowdsec/crowdsec_config.h"
#include "metrics/metrics_config.h"
#include "proxy/generation.h"
#include "daemon/privileges.h"
#include "kernel/kernel_features.h"
#include "daemon/sockmap_settings.h"
#include "kernel/relay_choice.h"
#include "routing/rule_check.h"
#include "watch/filter.h"
#include "watch/watcher.h"

namespace snigate::daemon {

namespace {

std::string join(const std::vector<std::string>& items, const char* none) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out.empty() ? none : out;
}

// Two sockets that cannot both bind: the same port on the same address, or on a wildcard
// address of the same family (the listeners share ports with each other via SO_REUSEPORT,
// the remote channel does not).
bool same_port(const boost::asio::ip::tcp::endpoint& a, const boost::asio::ip::tcp::endpoint& b) {
  if (a.port() == 0 || a.port() != b.port()) return false;
  if (a.address() == b.address()) return true;
  const bool any = a.address().is_unspecified() || b.address().is_unspecified();
  // [::] takes IPv4 too (dual stack, the Linux default).
  const bool v6_any = (a.address().is_v6() && a.address().is_unspecified()) ||
                      (b.address().is_v6() && b.address().is_unspecified());
  return any && (a.address().is_v4() == b.address().is_v4() || v6_any);
}

std::string lexical(const std::string& path) {
  return std::filesystem::path(path).lexically_normal().string();
}

// What the daemon would fail at start without a word from --check: two sockets on one port,
// one file used for two things.
void check_conflicts(const config::Config& c, const control::RemoteBanConfig& remote,
                     const bans::BansConfig& bans) {
  if (remote.enabled) {
    for (const auto& l : c.listeners)
      if (same_port(remote.listen, l.listen))
        throw config::ConfigError(
            c.raw["remote_ban"]["listen"].node()->source(),
            "[remote_ban] listen = \"" + config::format_endpoint(remote.listen) +
                "\" takes the port of listener " + l.name + " (" +
                config::format_endpoint(l.listen) + "); give the remote channel a port of its own");
  }
  const auto* daemon = c.raw["daemon"].as_table();
  auto where = [&](const char* key) {
    const toml::node* n = daemon ? daemon->get(key) : nullptr;
    return n ? n->source() : c.raw.source();
  };
  const std::string socket = lexical(c.daemon.control_socket);
  if (c.daemon.access_log != "stdout" && lexical(c.daemon.access_log) == socket)
    throw config::ConfigError(where("access_log"),
                              "'access_log' and 'control_socket' are the same file (" +
                                  c.daemon.access_log + "); give each its own path");
  if (bans.enabled) {
    const std::string store = lexical(bans.store);
    for (const auto& [what, path] : {std::pair{"control_socket", c.daemon.control_socket},
                                     std::pair{"access_log", c.daemon.access_log}})
      if (path != "stdout" && lexical(path) == store)
        throw config::ConfigError(where(what), std::string("'") + what +
                                                   "' is the ban store's file ([bans] store = \"" +
                                                   bans.store + "\"); give each its own path");
  }
}

// Route regexes that can backtrack without end: not an error (they work, bounded by the
// match limit), but a name crafted against them costs a worker the limit on every lookup.
std::string regex_warnings(const config::Config& c) {
  std::string out;
  for (const auto& [name, table] : c.tables)
    for (const auto& e : table.entries)
      if (e.kind == config::RouteEntry::Kind::Regex && config::nests_unbounded_quantifiers(e.pattern))
        out += std::string("warning: ") +
               config::ConfigError(e.where, "regex \"~" + e.pattern + "\" in [table." + name +
                                                "] repeats a group that itself repeats without "
                                                "bound; crafted names make it backtrack to the "
                                                "match limit (then it does not match): rewrite "
                                                "it without the nesting")
                   .what() +
               "\n";
  return out;
}

// What enforces bans, as the daemon would choose it (subsystems.cpp, bpf_ban_map.h): the
// attach mode itself (native XDP needs driver support) is learnt only by attaching.
std::string ban_enforcement(const kernel::KernelFeatures& k, const bans::BansConfig& bans) {
  const std::string gap = kernel::KernelFeatures::missing(k.ban_programs);
  if (!gap.empty()) return "at accept time only (no BPF ban programs: " + gap + ")";
  if (bans.interfaces.empty())
    return "BPF ban maps, checked at accept time (no [bans] interfaces: no XDP/TC)";
  return "XDP on " + join(bans.interfaces, "") +
         " (native if the driver has it, else generic; TC ingress beside another program's "
         "XDP), and at accept time";
}

// The account a drop switches to must exist where the check runs: a package's postinst, or
// the operator, creates it before the daemon starts.
std::string privileges(const config::Config& c) {
  if (c.daemon.user.empty()) return "privileges: kept as started (no [daemon] user)\n";
  auto at = [&](const char* key) { return c.raw["daemon"][key].node()->source(); };
  Account a;
  try {
    resolve_account(c.daemon.user, {});
  } catch (const std::exception& e) {
    throw config::ConfigError(at("user"), e.what());
  }
  try {
    a = resolve_account(c.daemon.user, c.daemon.group);
  } catch (const std::exception& e) {
    throw config::ConfigError(at("group"), e.what());
  }
  return "privileges: started as root, runs as user " + c.daemon.user + " (uid " +
         std::to_string(a.uid) + "), group " + a.group + " (gid " + std::to_string(a.gid) +
         ") once bound and loaded, keeping CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_BPF (and "
         "CAP_PERFMON under the sockmap relay)\n";
}

}  // namespace

std::string check_config(std::shared_ptr<const config::Config> config,
                         std::optional<relay::Mode> relay_override) {
  const config::Config& c = *config;
  // Route tables (regexes compiled), upstream pools, [resolver], forward allow-lists and auth.
  auto generation = proxy::build_generation(config);
  std::ostringstream out;
  out << config::check_summary(c);
  const auto& resolver = generation->forward->resolver;
  if (!generation->forward->listeners.empty() || !generation->forward->backends.empty())
    out << "resolver: " << join(resolver.servers, "/etc/resolv.conf") << ", timeout "
        << resolver.timeout.count() << "ms\n";

  const auto kernel = kernel::probe_kernel();
  out << kernel::format_report(kernel);
  const relay::Mode requested = relay_override.value_or(c.daemon.relay);
  out << kernel::describe(kernel::choose_relay(requested, sockmap_of(c.daemon), kernel),
                          requested)
      << "\n";

  out << privileges(c);

  const auto bans = bans::parse_bans_config(c.raw);
  if (bans.enabled) {
    std::vector<std::string> ignore;
    for (const auto& p : bans.ignore) ignore.push_back(p.str());
    out << "bans: store " << bans.store << ", maps in " << bans.pin_dir << ", interfaces "
        << join(bans.interfaces, "none (accept time only)") << ", ignore "
        << join(ignore, "none") << "\n"
        << "bans enforced by: " << ban_enforcement(kernel, bans) << "\n";
  } else {
    out << "bans: off\n";
  }

  const auto remote = control::parse_remote_ban_config(c.raw);
  check_conflicts(c, remote, bans);
  if (remote.enabled) {
    // start_subsystems refuses this too; --check says so before the daemon is started.
    if (!bans.enabled)
      throw config::ConfigError(c.raw.get("remote_ban")->source(),
                                "[remote_ban] needs bans on; remove [bans] enabled = false or "
                                "set [remote_ban] enabled = false");
    out << "remote_ban: listening on " << remote.listen << ", " << remote.tokens.size()
        << " token(s), " << (remote.allow.empty() ? "any peer" : "allow-listed peers") << "\n";
  }

  const auto metrics_cfg = metrics::parse_metrics_config(c.raw);
  if (metrics_cfg.enabled) {
    auto taken = [&](const std::string& by, const boost::asio::ip::tcp::endpoint& at) {
      throw config::ConfigError(c.raw["metrics"]["listen"].node()->source(),
                                "[metrics] listen = \"" + config::format_endpoint(metrics_cfg.listen) +
                                    "\" takes the port of " + by + " (" +
                                    config::format_endpoint(at) + "); give metrics a port of its own");
    };
    for (const auto& l : c.listeners)
      if (same_port(metrics_cfg.listen, l.listen)) taken("listener " + l.name, l.listen);
    if (remote.enabled && same_port(metrics_cfg.listen, remote.listen))
      taken("[remote_ban]", remote.listen);
    out << "metrics: http://" << config::format_endpoint(metrics_cfg.listen) << "/metrics\n";
  }

  const auto crowdsec = crowdsec::parse_crowdsec_config(c.raw);
  if (crowdsec.enabled) {
    if (!bans.enabled)
      throw config::ConfigError(c.raw.get("crowdsec")->source(),
                                "[crowdsec] needs bans on; remove [bans] enabled = false or "
                                "set [crowdsec] enabled = false");
    if (!crowdsec.api_key.empty())
      out << "crowdsec: bouncer of " << crowdsec.lapi.text << ", every "
          << config::format_duration(crowdsec.poll_interval) << "\n";
    if (!crowdsec.machine_id.empty())
      out << "crowdsec: source to " << crowdsec.lapi.text << " as machine '" << crowdsec.machine_id
          << "', pushing" << (crowdsec.push_jails ? " jails" : "")
          << (crowdsec.push_ctl ? " snigatectl" : "") << "\n";
  }

  for (const auto& jail : watch::parse_jails(c.raw)) {
    if (!jail.enabled) {
      out << "jail " << jail.name << ": disabled\n";
      continue;
    }
    // The filter file is loaded and every regex compiled, as the daemon does at start.
    std::vector<std::string> slow;
    try {
      auto definition = watch::jail_filter(jail);
      watch::Filter filter(definition);
      slow = watch::regexes_that_give_up(definition);
    } catch (const std::exception& e) {
      throw std::runtime_error(jail.where + ": jail '" + jail.name + "': " + e.what());
    }
    for (const auto& regex : slow)
      out << "warning: " << jail.where << ": jail '" << jail.name << "': regex '" << regex
          << "' gives up at PCRE2's match limit on a probe line (nested repeats backtrack "
             "without end); hostile lines like it are neither failures nor misses: rewrite it\n";
    out << "jail " << jail.name << ": " << (jail.filter.empty() ? "inline failregex" : jail.filter)
        << " on " << join(jail.logpath, "nothing") << ", maxretry " << jail.maxretry << " in "
        << jail.findtime.count() << "s, bantime " << jail.bantime.count() << "s"
        << (bans.enabled ? "" : " (not started: bans are off)") << "\n";
  }
  out << regex_warnings(c);
  for (const auto& warning : routing::unreachable_rules(c)) out << "warning: " << warning << "\n";
  return out.str();
}

}  // namespace snigate::daemon
