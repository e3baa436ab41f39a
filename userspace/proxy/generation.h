#pragma once
// One loaded configuration in the shape the data path uses it. Sessions hold a shared_ptr to
// the generation they started under, so a reload never changes a live connection's tables,
// backends or relay.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "forward/forward_settings.h"
#include "relay/relay.h"
#include "routing/route_table.h"
#include "upstream/upstream_pool.h"

namespace snigate::proxy {

class ListenerMetrics;  // proxy/stats.h
struct BackendMetrics;
struct ServerMetrics;

struct ListenerSettings {
  const config::ListenerConfig* config = nullptr;  // name, endpoint, protocol, preread bounds,
                                                   // proxy_protocol_in, trusted_proxies
  std::shared_ptr<const routing::RouteTable> table;
  ListenerMetrics* metrics = nullptr;  // set by Stats::attach before the generation serves
  const std::string& name() const { return config->name; }
  bool http() const { return config->protocol == config::Protocol::Http; }
};

struct BackendSettings {
  const config::BackendConfig* config = nullptr;
  std::shared_ptr<upstream::UpstreamPool> pool;
  BackendMetrics* metrics = nullptr;   // set by Stats::attach, with servers
  std::vector<ServerMetrics*> servers;  // by index in config->servers
};

struct Generation {
  std::shared_ptr<const config::Config> config;
  std::vector<ListenerSettings> listeners;
  std::map<std::string, BackendSettings> backends;
  std::shared_ptr<relay::Relay> relay;
  relay::Options relay_options;
  // [daemon] max_connections within what the descriptor limit affords under `relay`
  // (fd_budget.h); set by the daemon with the relay.
  std::size_t max_connections = 0;
  // The splice relay's pipe pool bound within the same budget; 0 when `relay` splices not.
  std::size_t max_pipes = 0;
  // Connect listeners and forward backends: allow-lists, credentials, [resolver].
  std::shared_ptr<const forward::ForwardSettings> forward;

  const ListenerSettings* listener(const std::string& name) const;
  const BackendSettings* backend(const std::string& name) const;
};

// Builds route tables, upstream pools and the forward settings from a loaded config (throws
// config::ConfigError). Connect listeners have no table. The relay is chosen by the caller,
// once per change of `relay` mode.
std::shared_ptr<Generation> build_generation(std::shared_ptr<const config::Config> config);

}  // namespace snigate::proxy
