#include <toml++/toml.h>

#include "bans/ban_manager.h"
#include "config/diag.h"

namespace snigate::bans {

BansConfig parse_bans_config(const toml::table& root) {
  BansConfig cfg;
  const auto* node = root.get("bans");
  if (!node) return cfg;
  const auto* t = node->as_table();
  if (!t) config::fail(*node, "[bans] must be a table");
  config::check_keys(*t, {"enabled", "pin_dir", "store", "interfaces", "ignore", "sweep_interval",
                      "repeat_factor", "repeat_max"},
                     "bans");
  cfg.enabled = config::get_bool(*t, "enabled", cfg.enabled);
  cfg.pin_dir = config::get_string(*t, "pin_dir", cfg.pin_dir);
  if (cfg.pin_dir.empty() || cfg.pin_dir.front() != '/')
    config::fail(*t->get("pin_dir"), "'pin_dir' must be an absolute path on a bpffs, such as "
                                     "/sys/fs/bpf/snigate/v1");
  cfg.store = config::get_string(*t, "store", cfg.store);
  if (cfg.store.empty()) config::fail(*t->get("store"), "'store' must name a file, such as "
                                                        "/var/lib/snigate/bans.db");
  cfg.interfaces = config::get_string_list(*t, "interfaces");
  cfg.ignore = config::get_prefix_list(*t, "ignore", "[bans] ");
  auto sweep = config::get_duration(*t, "sweep_interval", cfg.sweep_interval);
  if (sweep.count() % 1000 != 0)
    config::fail(*t->get("sweep_interval"), "'sweep_interval' must be whole seconds, such as \"1s\"");
  cfg.sweep_interval = std::chrono::duration_cast<std::chrono::seconds>(sweep);
  if (const auto* f = t->get("repeat_factor")) {
    auto value = f->value<double>();
    if (!value || *value < 1.0)
      config::fail(*f, "'repeat_factor' must be a number >= 1 (1 = repeat offenders get no longer bans)");
    cfg.repeat_factor = *value;
  }
  auto max = config::get_duration(*t, "repeat_max", cfg.repeat_max);
  if (max.count() < 1000)
    config::fail(*t->get("repeat_max"), "'repeat_max' must be at least \"1s\", such as \"30d\"");
  cfg.repeat_max = std::chrono::duration_cast<std::chrono::seconds>(max);
  return cfg;
}

}  // namespace snigate::bans
