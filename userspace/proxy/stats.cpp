#include "proxy/stats.h"

#include "config/server.h"
#include "proxy/generation.h"

namespace snigate::proxy {

namespace {

template <class T, class Key>
T& find_or_add(std::map<Key, std::unique_ptr<T>>& map, const Key& key) {
  auto& slot = map[key];
  if (!slot) slot = std::make_unique<T>();
  return *slot;
}

}  // namespace

FlowMetrics& ListenerMetrics::flow(const std::string& backend) {
  std::lock_guard lock(mu_);
  return find_or_add(flows_, backend);
}

std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> ListenerMetrics::flows() const {
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> out;
  std::lock_guard lock(mu_);
  for (const auto& [backend, f] : flows_)
    out[backend] = {f->to_backend.value(), f->from_backend.value()};
  return out;
}

void Stats::attach(Generation& g) {
  std::lock_guard lock(mu_);
  for (auto& l : g.listeners) l.metrics = &find_or_add(listeners_, l.name());
  for (auto& [name, b] : g.backends) {
    b.metrics = &find_or_add(backends_, name);
    b.servers.clear();
    for (const auto& server : b.config->servers)
      b.servers.push_back(&find_or_add(servers_, std::pair{name, config::address(server)}));
  }
}

void Stats::ended(ListenerMetrics& listener, const Ended& e) {
  listener.active.sub();
  listener.ended[static_cast<std::size_t>(e.reason)].add();
  if (e.relay != relay::Mode::Auto) relayed_[static_cast<std::size_t>(e.relay)].add();
  if (e.fallback != relay::Fallback::None) fallbacks_[static_cast<std::size_t>(e.fallback)].add();
  if (e.backend) {
    e.backend->connections.add();
    if (e.reason == EndReason::Refused) e.backend->refused.add();
  }
  if (e.to_upstream == 0 && e.to_client == 0) return;
  // Tunnels of a connect listener have no backend: their bytes go under backend "".
  auto& flow = listener.flow(e.backend_name ? *e.backend_name : std::string());
  flow.to_backend.add(e.to_upstream);
  flow.from_backend.add(e.to_client);
}

StatsSnapshot Stats::snapshot() const {
  StatsSnapshot s;
  std::lock_guard lock(mu_);
  for (const auto& [name, m] : listeners_) {
    auto& l = s.listeners[name];
    l.accepted = m->accepted.value();
    l.active = m->active.value();
    for (std::size_t i = 0; i < kEndReasons; ++i) l.ended[i] = m->ended[i].value();
    l.preread = m->preread.snapshot();
    l.bytes = m->flows();
    s.accepted += l.accepted;
    s.active += l.active;
    for (std::size_t i = 0; i < kEndReasons; ++i)
      if (l.ended[i]) s.ended[to_string(static_cast<EndReason>(i))] += l.ended[i];
    for (const auto& [backend, bytes] : l.bytes) {
      s.bytes_client_to_upstream += bytes.first;
      s.bytes_upstream_to_client += bytes.second;
      if (backend.empty()) continue;
      s.backends[backend].bytes_to_backend += bytes.first;
      s.backends[backend].bytes_from_backend += bytes.second;
    }
  }
  for (const auto& [name, m] : backends_) {
    if (!m->connections.value()) continue;  // named by a configuration, never used
    s.backends[name].connections = m->connections.value();
    s.backends[name].failures = m->refused.value();
  }
  for (const auto& [key, m] : servers_)
    s.servers[key] = {m->connects.value(), m->failures.value(), m->no_local_port.value(),
                      m->connect_time.snapshot()};
  for (std::size_t i = 0; i < s.relayed.size(); ++i) s.relayed[i] = relayed_[i].value();
  for (std::size_t i = 0; i < s.fallbacks.size(); ++i) s.fallbacks[i] = fallbacks_[i].value();
  return s;
}

}  // namespace snigate::proxy
