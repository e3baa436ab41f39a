#include "proxy/generation.h"

#include <spdlog/spdlog.h>

#include "net/local_address.h"

namespace snigate::proxy {

const ListenerSettings* Generation::listener(const std::string& name) const {
  for (const auto& l : listeners)
    if (l.name() == name) return &l;
  return nullptr;
}

const BackendSettings* Generation::backend(const std::string& name) const {
  auto it = backends.find(name);
  return it == backends.end() ? nullptr : &it->second;
}

std::shared_ptr<Generation> build_generation(std::shared_ptr<const config::Config> config) {
  auto g = std::make_shared<Generation>();
  g->config = std::move(config);
  const config::Config& c = *g->config;
  g->relay_options.idle_timeout = c.daemon.idle_timeout;
  std::map<std::string, std::shared_ptr<const routing::RouteTable>> tables;
  for (const auto& [name, table] : c.tables)
    tables[name] = std::make_shared<const routing::RouteTable>(routing::RouteTable::build(table));
  for (const auto& [name, backend] : c.backends) {
    g->backends[name] = {&backend, std::make_shared<upstream::UpstreamPool>(backend), nullptr, {}};
    // Said at start and at each reload, not refused: an address may come later (DHCP, VRRP).
    for (const auto& server : backend.servers)
      if (server.source && !net::is_local_address(*server.source))
        spdlog::warn("backend {}: server {}: source {} is not an address of this host now; its "
                     "connects fail (binding source) until it is",
                     name, server.text, server.source->to_string());
  }
  for (const auto& l : c.listeners) {
    // Connect listeners take their destinations from the request, not from a table.
    if (l.protocol == config::Protocol::Connect) {
      g->listeners.push_back({&l, nullptr, nullptr});
      continue;
    }
    auto it = tables.find(l.table);
    if (it == tables.end())
      throw config::ConfigError(c.source + ": listener " + l.name + " names table '" + l.table +
                                "' which is not defined; add a [table." + l.table + "] section");
    g->listeners.push_back({&l, it->second, nullptr});
  }
  g->forward = forward::load_forward_settings(c);
  return g;
}

}  // namespace snigate::proxy
