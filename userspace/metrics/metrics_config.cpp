#include "metrics/metrics_config.h"

#include "config/diag.h"
#include "config/endpoint.h"

namespace snigate::metrics {

MetricsConfig parse_metrics_config(const toml::table& root) {
  MetricsConfig cfg;
  const auto* node = root.get("metrics");
  if (!node) return cfg;
  const auto* t = node->as_table();
  if (!t) config::fail(*node, "[metrics] must be a table");
  config::check_keys(*t, {"enabled", "listen"}, "metrics");
  if (!t->contains("listen")) {
    if (config::get_bool(*t, "enabled", false))
      throw config::ConfigError(t->source(),
                                "[metrics] needs 'listen', such as \"127.0.0.1:9100\"");
    return cfg;
  }
  cfg.enabled = config::get_bool(*t, "enabled", true);
  std::string error;
  auto listen = config::parse_listen_address(config::get_string(*t, "listen", ""), &error);
  if (!listen) config::fail(*t->get("listen"), "[metrics] listen: " + error);
  cfg.listen = *listen;
  return cfg;
}

}  // namespace snigate::metrics
