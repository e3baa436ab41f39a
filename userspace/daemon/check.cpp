#include "daemon/check.h"

#include <sstream>
#include <stdexcept>

#include "bans/ban_manager.h"
#include "control/remote_config.h"
#include "daemon/generation.h"
#include "watch/filter.h"
#include "watch/watcher.h"

namespace snigate::daemon {

namespace {

std::string join(const std::vector<std::string>& items, const char* none) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out.empty() ? none : out;
}

}  // namespace

std::string check_config(std::shared_ptr<const config::Config> config) {
  const config::Config& c = *config;
  // Route tables (regexes compiled), upstream pools, [resolver], forward allow-lists and auth.
  auto generation = build_generation(config);
  std::ostringstream out;
  out << config::check_summary(c);
  const auto& resolver = generation->forward->resolver;
  if (!generation->forward->listeners.empty() || !generation->forward->backends.empty())
    out << "resolver: " << join(resolver.servers, "/etc/resolv.conf") << ", timeout "
        << resolver.timeout.count() << "ms\n";

  const auto bans = bans::parse_bans_config(c.raw);
  if (bans.enabled) {
    std::vector<std::string> ignore;
    for (const auto& p : bans.ignore) ignore.push_back(p.str());
    out << "bans: store " << bans.store << ", maps in " << bans.pin_dir << ", interfaces "
        << join(bans.interfaces, "none (accept time only)") << ", ignore "
        << join(ignore, "none") << "\n";
  } else {
    out << "bans: off\n";
  }

  const auto remote = control::parse_remote_ban_config(c.raw);
  if (remote.enabled) {
    // start_subsystems refuses this too; --check says so before the daemon is started.
    if (!bans.enabled)
      throw config::ConfigError(c.raw.get("remote_ban")->source(),
                                "[remote_ban] needs bans on; remove [bans] enabled = false or "
                                "set [remote_ban] enabled = false");
    out << "remote_ban: listening on " << remote.listen << ", " << remote.tokens.size()
        << " token(s), " << (remote.allow.empty() ? "any peer" : "allow-listed peers") << "\n";
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
  return out.str();
}

}  // namespace snigate::daemon
