#include "daemon/figures.h"

#include "metrics/exposition.h"

namespace snigate::daemon {

using metrics::Type;

std::string to_prometheus(const Figures& f) {
  const proxy::StatsSnapshot& s = f.stats;
  metrics::TextWriter w;

  w.family("snigate_connections_accepted_total", Type::Counter,
           "Client connections accepted, by listener.");
  for (const auto& [name, l] : s.listeners) w.sample({{"listener", name}}, l.accepted);
  w.family("snigate_connections_active", Type::Gauge,
           "Client connections open now, by listener.");
  for (const auto& [name, l] : s.listeners) w.sample({{"listener", name}}, l.active);
  w.family("snigate_connections_ended_total", Type::Counter,
           "Client connections ended, by listener and end reason (the access log's end=).");
  for (const auto& [name, l] : s.listeners)
    for (std::size_t i = 0; i < proxy::kEndReasons; ++i)
      w.sample({{"listener", name}, {"reason", to_string(static_cast<proxy::EndReason>(i))}},
               l.ended[i]);
  w.family("snigate_preread_duration_seconds", Type::Histogram,
           "Time from accept to a routable name (ClientHello or HTTP head read), by listener.");
  for (const auto& [name, l] : s.listeners) w.histogram({{"listener", name}}, l.preread);
  w.family("snigate_relayed_bytes_total", Type::Counter,
           "Bytes relayed by connections that ended, by listener, backend (\"\" for CONNECT "
           "tunnels) and direction.");
  for (const auto& [name, l] : s.listeners)
    for (const auto& [backend, bytes] : l.bytes) {
      w.sample({{"listener", name}, {"backend", backend}, {"direction", "to_backend"}},
               bytes.first);
      w.sample({{"listener", name}, {"backend", backend}, {"direction", "to_client"}},
               bytes.second);
    }

  w.family("snigate_backend_connections_total", Type::Counter,
           "Connections routed to a backend, counted when they end.");
  for (const auto& [name, b] : s.backends) w.sample({{"backend", name}}, b.connections);
  w.family("snigate_backend_connections_refused_total", Type::Counter,
           "Connections routed to a backend that no server of it took.");
  for (const auto& [name, b] : s.backends) w.sample({{"backend", name}}, b.failures);
  w.family("snigate_server_connects_total", Type::Counter,
           "Connect attempts that succeeded, by backend and server address as configured.");
  for (const auto& [key, v] : s.servers)
    w.sample({{"backend", key.first}, {"server", key.second}}, v.connects);
  w.family("snigate_server_connect_failures_total", Type::Counter,
           "Connect attempts refused, timed out or not resolved, by backend and server.");
  for (const auto& [key, v] : s.servers)
    w.sample({{"backend", key.first}, {"server", key.second}}, v.failures);
  w.family("snigate_server_connect_no_local_port_total", Type::Counter,
           "Connect attempts that found no free local port towards the server (EADDRNOTAVAIL): "
           "this host's shortage, not counted as failures.");
  for (const auto& [key, v] : s.servers)
    w.sample({{"backend", key.first}, {"server", key.second}}, v.no_local_port);
  w.family("snigate_server_connect_duration_seconds", Type::Histogram,
           "Time a successful connect attempt took (name resolution included).");
  for (const auto& [key, v] : s.servers)
    w.histogram({{"backend", key.first}, {"server", key.second}}, v.connect_time);
  w.family("snigate_server_up", Type::Gauge,
           "1 while a server of the running configuration is not marked down by max_fails.");
  for (const auto& h : f.health)
    w.sample({{"backend", h.backend}, {"server", h.server}}, std::uint64_t{h.up ? 1u : 0u});

  w.family("snigate_relay_info", Type::Gauge,
           "The relay the running configuration asks for and the one it uses (value 1).");
  w.sample({{"requested", relay::to_string(f.relay_requested)},
            {"mode", relay::to_string(f.relay_mode)}},
           std::uint64_t{1});
  w.family("snigate_relay_connections_total", Type::Counter,
           "Connections that ended after relaying, by the relay that moved their bytes.");
  for (auto mode : {relay::Mode::Sockmap, relay::Mode::Splice, relay::Mode::Copy})
    w.sample({{"mode", relay::to_string(mode)}}, s.relayed[static_cast<std::size_t>(mode)]);
  w.family("snigate_relay_fallbacks_total", Type::Counter,
           "Connections the sockmap relay handed to its userspace fallback, by reason.");
  for (std::size_t i = 1; i < relay::kFallbacks; ++i)
    w.sample({{"reason", relay::to_string(static_cast<relay::Fallback>(i))}}, s.fallbacks[i]);
  w.family("snigate_relay_pipes_open", Type::Gauge,
           "Pipes the splice relay holds, in use or kept empty for reuse.");
  w.sample({}, static_cast<std::uint64_t>(f.pipes.open));
  if (f.pipes.max != relay::kUnboundedPipes) {
    w.family("snigate_relay_pipes_max", Type::Gauge,
             "The bound on those pipes ([daemon] max_pipes, or a quarter of max_connections).");
    w.sample({}, static_cast<std::uint64_t>(f.pipes.max));
  }
  w.family("snigate_relay_bursts_by_copy_total", Type::Counter,
           "Bursts the splice relay moved by copy because every pipe max_pipes allows was in "
           "use: raise max_pipes if it grows.");
  w.sample({}, f.pipes.bursts_by_copy);
  w.family("snigate_route_regex_limit_hits_total", Type::Counter,
           "Route regexes that gave up at the match limit (in the running tables).");
  w.sample({}, f.regex_limit_hits);

  if (f.bans) {
    w.family("snigate_bans_active", Type::Gauge, "Bans in force.");
    w.sample({}, static_cast<std::uint64_t>(f.bans->active));
    w.family("snigate_bans_unsaved", Type::Gauge, "Bans and unbans waiting for the ban store.");
    w.sample({}, static_cast<std::uint64_t>(f.bans->unsaved));
    w.family("snigate_ban_drops_total", Type::Counter,
             "Packets or connections a ban stopped: by the XDP/TC program, or at accept.");
    w.sample({{"stage", "xdp_tc"}}, f.bans->dropped);
    w.sample({{"stage", "accept"}}, f.bans->refused_at_accept);
    w.family("snigate_ban_packets_inspected_total", Type::Counter,
             "Packets the XDP/TC ban program looked at.");
    w.sample({}, f.bans->packets);
  }
  if (!f.jails.empty()) {
    w.family("snigate_watch_lines_total", Type::Counter,
             "Log lines a jail read (since the jails last started).");
    for (const auto& j : f.jails) w.sample({{"jail", j.name}}, j.lines);
    w.family("snigate_watch_matches_total", Type::Counter,
             "Log lines a jail's failregex matched.");
    for (const auto& j : f.jails) w.sample({{"jail", j.name}}, j.matches);
    w.family("snigate_watch_bans_total", Type::Counter, "Bans a jail asked for.");
    for (const auto& j : f.jails) w.sample({{"jail", j.name}}, j.bans);
  }
  w.family("snigate_requests_refused_total", Type::Counter,
           "Control socket and remote ban channel requests (and connections) refused.");
  w.sample({{"channel", "control"}}, f.control_refused);
  if (f.remote_refused) w.sample({{"channel", "remote"}}, *f.remote_refused);
  return w.text();
}

}  // namespace snigate::daemon
