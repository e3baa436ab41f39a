#include "watch/jail_config.h"

#include <cmath>
#include <filesystem>
#include <set>

#include "config/diag.h"

namespace snigate::watch {

namespace {

using config::fail;

std::chrono::seconds seconds_of(const toml::table& t, std::string_view key,
                                std::chrono::seconds fallback) {
  return std::chrono::duration_cast<std::chrono::seconds>(config::get_duration(
      t, key, std::chrono::duration_cast<std::chrono::milliseconds>(fallback)));
}

std::string where_of(const toml::node& node) {
  const auto& src = node.source();
  std::string file = src.path ? std::string(*src.path) : "<config>";
  return file + ":" + std::to_string(src.begin.line);
}

JailConfig parse_jail(const toml::table& t) {
  config::check_keys(t,
                     {"name", "enabled", "logpath", "filter", "filter_dir", "failregex",
                      "ignoreregex", "datepattern", "maxretry", "findtime", "bantime",
                      "bantime_increment", "ignoreip", "ignoreself", "ban_prefix_v6", "action"},
                     "[[jail]]");
  JailConfig j;
  j.where = where_of(t);
  j.name = config::require_string(t, "name", "[[jail]]");
  j.enabled = config::get_bool(t, "enabled", true);
  j.logpath = config::get_string_list(t, "logpath");
  if (j.logpath.empty()) fail(t, "jail '" + j.name + "': 'logpath' is required (a path, glob or list)");
  j.filter = config::get_string(t, "filter", "");
  j.filter_dir = config::get_string(t, "filter_dir", j.filter_dir);
  j.failregex = config::get_string_list(t, "failregex");
  j.ignoreregex = config::get_string_list(t, "ignoreregex");
  if (j.filter.empty() && j.failregex.empty())
    fail(t, "jail '" + j.name + "': set 'filter' (a fail2ban filter file or name) or 'failregex'");
  j.datepattern = config::get_string(t, "datepattern", "");
  j.maxretry = static_cast<int>(config::get_int(t, "maxretry", j.maxretry, 1, 1000000));
  j.findtime = seconds_of(t, "findtime", j.findtime);
  j.bantime = seconds_of(t, "bantime", j.bantime);
  if (j.findtime.count() <= 0) fail(*t.get("findtime"), "'findtime' must be at least 1s");
  if (j.bantime.count() <= 0) fail(*t.get("bantime"), "'bantime' must be at least 1s");
  if (const auto* inc = t.get("bantime_increment")) {
    if (auto on = inc->value_exact<bool>()) {
      if (*on) j.bantime_increment = BantimeIncrement{};
    } else if (const auto* it = inc->as_table()) {
      config::check_keys(*it, {"factor", "max"}, "bantime_increment");
      BantimeIncrement b;
      if (const auto* f = it->get("factor")) {
        auto v = f->value<double>();
        if (!v || *v < 1.0 || !std::isfinite(*v)) fail(*f, "'factor' must be a number >= 1");
        b.factor = *v;
      }
      b.max = seconds_of(*it, "max", b.max);
      j.bantime_increment = b;
    } else {
      fail(*inc, "'bantime_increment' must be true/false or { factor = 2, max = \"1w\" }");
    }
  }
  j.ignoreip = config::get_prefix_list(t, "ignoreip", "jail '" + j.name + "': ");
  j.ignoreself = config::get_bool(t, "ignoreself", j.ignoreself);
  j.ban_prefix_v6 = static_cast<unsigned>(config::get_int(t, "ban_prefix_v6", 128, 1, 128));
  j.action = config::get_string(t, "action", "ban");
  if (j.action != "ban") fail(*t.get("action"), "jail '" + j.name + "': action must be \"ban\"");
  return j;
}

}  // namespace

std::vector<JailConfig> parse_jails(const toml::table& root) {
  std::vector<JailConfig> out;
  const auto* node = root.get("jail");
  if (!node) return out;
  const auto* arr = node->as_array();
  if (!arr) fail(*node, "'jail' must be an array of tables: write [[jail]]");
  std::set<std::string> names;
  for (const auto& item : *arr) {
    const auto* t = item.as_table();
    if (!t) fail(item, "each [[jail]] must be a table");
    auto j = parse_jail(*t);
    if (!names.insert(j.name).second) fail(*t, "jail '" + j.name + "' is defined twice");
    out.push_back(std::move(j));
  }
  return out;
}

WatchConfig parse_watch_config(const toml::table& root) {
  WatchConfig w;
  // snigated keeps its state in one place: positions go beside the ban store
  // ([bans] store = "/var/lib/snigate/bans.db" -> /var/lib/snigate/watch).
  if (const auto* bans = root["bans"].as_table())
    if (const auto* store = bans->get_as<std::string>("store"))
      w.state_dir = (std::filesystem::path(store->get()).parent_path() / "watch").string();
  const auto* node = root.get("watch");
  if (!node) return w;
  const auto* t = node->as_table();
  if (!t) fail(*node, "[watch] must be a table");
  config::check_keys(*t, {"state_dir"}, "[watch]");
  w.state_dir = config::get_string(*t, "state_dir", w.state_dir);
  return w;
}

}  // namespace snigate::watch
