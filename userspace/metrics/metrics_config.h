#pragma once
// `[metrics]`: where snigated serves GET /metrics for Prometheus. Off unless `listen` is set:
//   [metrics]
//   listen = "127.0.0.1:9100"   # an IP literal and a port; anyone who reaches it reads the
//                               # figures, so keep it on loopback or a management network
//   enabled = true
#include <boost/asio/ip/tcp.hpp>
#include <toml++/toml.h>

namespace snigate::metrics {

struct MetricsConfig {
  bool enabled = false;
  boost::asio::ip::tcp::endpoint listen;
};

// Reads [metrics] from the config document (config::Config::raw). Throws config::ConfigError
// "FILE:LINE:COL: ...".
MetricsConfig parse_metrics_config(const toml::table& root);

}  // namespace snigate::metrics
