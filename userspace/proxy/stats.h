#pragma once
// Daemon-wide counters: one metric object per label set (listener, backend, server), created
// the first time a configuration generation names it and kept for the daemon's life, so a
// counter never goes back on a reload. Generations point at their objects (Stats::attach):
// a session updates relaxed atomics through those pointers and takes one short lock per
// connection, at its end, for its listener's bytes to its backend. snapshot() is the one
// place both `snigatectl stats` and GET /metrics read them from.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "proxy/end_reason.h"
#include "metrics/instruments.h"
#include "relay/relay.h"

namespace snigate::proxy {

struct Generation;

// A listener's bytes to one backend, each way.
struct FlowMetrics {
  metrics::Counter to_backend;
  metrics::Counter from_backend;
};

class ListenerMetrics {
 public:
  metrics::Counter accepted;
  metrics::Gauge active;
  std::array<metrics::Counter, kEndReasons> ended;
  metrics::Histogram preread;  // accept to a routable name (ClientHello or request head read)

  FlowMetrics& flow(const std::string& backend);  // locked: once per connection, at its end
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> flows() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<FlowMetrics>> flows_;
};

struct BackendMetrics {
  metrics::Counter connections;  // routed to this backend, counted when they end
  metrics::Counter refused;      // of those, ended refused: no server reachable
};

// One server of a backend, by its address as configured.
struct ServerMetrics {
  metrics::Counter connects;         // attempts that connected
  metrics::Counter failures;         // attempts refused, timed out or not resolved
  metrics::Counter no_local_port;    // attempts that found no free local port (not failures)
  metrics::Histogram connect_time;   // of the attempts that connected, resolution included
};

struct BackendStats {
  std::uint64_t connections = 0;
  std::uint64_t failures = 0;  // connections that ended refused (no upstream reachable)
  std::uint64_t bytes_to_backend = 0;
  std::uint64_t bytes_from_backend = 0;
};

struct ListenerStats {
  std::uint64_t accepted = 0;
  std::int64_t active = 0;
  std::array<std::uint64_t, kEndReasons> ended{};
  metrics::HistogramSnapshot preread;
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> bytes;  // by backend: to, from
};

struct ServerStats {
  std::uint64_t connects = 0;
  std::uint64_t failures = 0;
  std::uint64_t no_local_port = 0;
  metrics::HistogramSnapshot connect_time;
};

struct StatsSnapshot {
  // Totals over every listener.
  std::uint64_t accepted = 0;
  std::int64_t active = 0;
  std::uint64_t bytes_client_to_upstream = 0;
  std::uint64_t bytes_upstream_to_client = 0;
  std::map<std::string, std::uint64_t> ended;  // by end reason name, reasons seen only
  std::map<std::string, BackendStats> backends;
  // By label set.
  std::map<std::string, ListenerStats> listeners;
  std::map<std::pair<std::string, std::string>, ServerStats> servers;  // (backend, server)
  std::array<std::uint64_t, 4> relayed{};  // connections relayed, by relay::Mode
  std::array<std::uint64_t, relay::kFallbacks> fallbacks{};
};

// What a connection reports when it ends.
struct Ended {
  EndReason reason = EndReason::Error;
  BackendMetrics* backend = nullptr;  // null when it was never routed to a defined backend
  const std::string* backend_name = nullptr;  // its name; null with backend
  std::uint64_t to_upstream = 0;
  std::uint64_t to_client = 0;
  relay::Mode relay = relay::Mode::Auto;  // Auto: it never relayed
  relay::Fallback fallback = relay::Fallback::None;
};

class Stats {
 public:
  // Points g's listeners and backends (and each backend's servers) at their metric objects.
  // Before g is published: sessions find the pointers set.
  void attach(Generation& g);
  void ended(ListenerMetrics& listener, const Ended& e);
  StatsSnapshot snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<ListenerMetrics>> listeners_;
  std::map<std::string, std::unique_ptr<BackendMetrics>> backends_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<ServerMetrics>> servers_;
  std::array<metrics::Counter, 4> relayed_;
  std::array<metrics::Counter, relay::kFallbacks> fallbacks_;
};

}  // namespace snigate::proxy
