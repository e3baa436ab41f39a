#include "daemon/route_answer.h"

#include "net/prefix.h"

namespace snigate::daemon {

control::RouteAnswer answer_route(const proxy::Generation& g, const control::RouteQuestion& q) {
  control::RouteAnswer a;
  const proxy::ListenerSettings* listener = g.listener(q.listener);
  if (!listener) {
    std::string names;
    for (const auto& l : g.listeners) names += (names.empty() ? "" : ", ") + l.name();
    a.error = "no listener '" + q.listener + "' (listeners: " + names + ")";
    return a;
  }
  if (!listener->table) {
    a.error = "listener '" + q.listener + "' takes its destinations from its allow-list, not a "
              "route table";
    return a;
  }
  std::optional<boost::asio::ip::address> client;
  if (!q.client.empty()) {
    std::string why;
    auto prefix = net::Prefix::parse(q.client, &why);
    if (!prefix || !prefix->is_host()) {
      a.error = "client '" + q.client + "': " + (prefix ? "one address, not a range" : why);
      return a;
    }
    client = prefix->address();
  }
  routing::RouteMatch m = listener->table->route({q.name, &q.alpn, client});
  if (!m.backend) return a;
  a.backend = *m.backend;
  a.rule = *m.rule;
  if (m.matched_rule)
    a.detail = config::ConfigError(m.matched_rule->where, config::describe(*m.matched_rule)).what();
  return a;
}

}  // namespace snigate::daemon
