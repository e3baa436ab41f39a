#include "proxy/quic_flows.h"

#include <fmt/format.h>

#include "net/prefix.h"

namespace snigate::proxy {

EndReason end_reason(quic::FlowEnd end) {
  switch (end) {
    case quic::FlowEnd::Idle: return EndReason::Timeout;
    case quic::FlowEnd::HelloTimeout: return EndReason::PrereadTimeout;
    case quic::FlowEnd::NoRoute: return EndReason::NoRoute;
    case quic::FlowEnd::ParseError: return EndReason::ParseError;
    case quic::FlowEnd::Banned: return EndReason::Banned;
    case quic::FlowEnd::Refused: return EndReason::Refused;
    case quic::FlowEnd::Drain: return EndReason::DrainTimeout;
    case quic::FlowEnd::Error: return EndReason::Error;
  }
  return EndReason::Error;
}

AccessRecord access_record(const quic::FlowRecord& f) {
  AccessRecord r;
  const auto a = net::unmap(f.client.address());
  r.client = a.is_v6() ? fmt::format("[{}]:{}", a.to_string(), f.client.port())
                       : fmt::format("{}:{}", a.to_string(), f.client.port());
  r.peer = r.client;  // no PROXY header in front of QUIC
  r.listener = f.listener;
  r.name = f.name;
  r.alpn = f.alpn;
  r.backend = f.backend;
  r.rule = f.rule;
  r.upstream = f.upstream;
  r.bytes_in = f.bytes_in;
  r.bytes_out = f.bytes_out;
  r.datagrams = true;
  r.packets_in = f.packets_in;
  r.packets_out = f.packets_out;
  r.kernel_path = f.forwarding == "kernel";
  r.kernel_packets_in = f.kernel_packets_in;
  r.kernel_packets_out = f.kernel_packets_out;
  r.connect_ms = f.route_ms;
  r.duration_ms = f.duration_ms;
  r.relay = f.forwarding;
  r.end = end_reason(f.end);
  r.detail = f.detail;
  return r;
}

std::optional<quic::FlowRoutes> flow_routes(std::shared_ptr<const Generation> g,
                                            const std::string& name, Stats& stats,
                                            AccessLog& access_log) {
  const ListenerSettings* l = g->listener(name);
  if (!l || !l->table) return std::nullopt;
  quic::FlowRoutes r;
  r.listener = l->config;
  r.table = l->table.get();
  const Generation* gen = g.get();
  r.pick = [gen](const std::string& backend, std::string* why) -> const config::ServerConfig* {
    const BackendSettings* b = gen->backend(backend);
    if (!b) return *why = "backend '" + backend + "' is not defined", nullptr;
    // No connect to succeed or fail: a datagram's server is chosen as a connection's would
    // be, by weight among those up, and nothing marks it down.
    auto pick = b->pool->pick({});
    if (!pick) return *why = "no server available", nullptr;
    return pick->server;
  };
  r.opened = [l] {
    l->metrics->accepted.add();
    l->metrics->active.add();
  };
  r.refused = [l] { l->metrics->ended[static_cast<std::size_t>(EndReason::Limit)].add(); };
  r.ended = [gen, l, &stats, &access_log](const quic::FlowRecord& f) {
    const BackendSettings* b = f.backend.empty() ? nullptr : gen->backend(f.backend);
    // The listener's bytes to a backend count what went there: nothing for an unrouted flow.
    const bool sent = !f.upstream.empty();
    stats.ended(*l->metrics, {end_reason(f.end), b ? b->metrics : nullptr,
                              b ? &f.backend : nullptr, sent ? f.bytes_in : 0, f.bytes_out,
                              relay::Mode::Auto, relay::Fallback::None});
    access_log.write(access_record(f));
  };
  r.owner = std::move(g);
  return r;
}

}  // namespace snigate::proxy
