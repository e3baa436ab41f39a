#include "control/format.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <utility>

#include "config/endpoint.h"

namespace snigate::control {

namespace {

// Log lines and reasons come from outside: keep each cell on one line and of bounded width.
std::string cell(std::string_view text, std::size_t max = 0) {
  std::string out;
  for (char c : text) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  if (max && out.size() > max) out = out.substr(0, max - 3) + "...";
  return out.empty() ? "-" : out;
}

std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

void flatten(const nlohmann::json& j, const std::string& prefix, std::vector<std::vector<std::string>>& rows) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it)
      flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), rows);
  } else {
    rows.push_back({prefix.empty() ? "value" : prefix,
                    j.is_string() ? j.get<std::string>() : j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
  }
}

}  // namespace

std::string format_duration(std::chrono::seconds d) {
  long long s = std::max<long long>(0, d.count());
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%llds", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  else if (s < 86400) std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s % 3600 / 60);
  else std::snprintf(buf, sizeof buf, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
  return buf;
}

std::string format_bytes(std::uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

std::string format_time(TimePoint t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string format_bans_table(const std::vector<bans::BanEntry>& bans, TimePoint now) {
  if (bans.empty()) return "no bans\n";
  std::vector<std::vector<std::string>> rows{
      {"PREFIX", "REMAINING", "DROPS", "OFFENCES", "SOURCE", "JAIL", "MATCHED", "REASON", "SAMPLE"}};
  for (const auto& b : bans) {
    std::string remaining = "permanent";
    if (b.expires) {
      auto left = std::chrono::round<std::chrono::seconds>(*b.expires - now);
      remaining = left.count() > 0 ? format_duration(left) : "expired";
    }
    rows.push_back({b.prefix.str(), remaining, std::to_string(b.drops), std::to_string(b.offences),
                    cell(b.source, 32), cell(b.jail, 24),
                    b.matched_at ? format_time(*b.matched_at) : "-", cell(b.reason, 40),
                    // Last column, so a long sample widens no other; nginx error lines name the
                    // client ~150 characters in, so 60 hid the very address that was banned.
                    cell(b.sample, 300)});
  }
  return table(rows);
}

std::string format_conns_table(const std::vector<conns::ConnInfo>& conns, TimePoint now) {
  if (conns.empty()) return "no connections\n";
  // Forward columns only when a forward connection is listed, so a plain edge's table stays
  // narrow.
  const bool forward = std::any_of(conns.begin(), conns.end(), [](const conns::ConnInfo& c) {
    return static_cast<bool>(c.forward);
  });
  std::vector<std::string> header{"ID", "CLIENT", "PEER", "LISTENER", "SNI", "BACKEND"};
  if (forward) header.insert(header.end(), {"REQUESTED", "RESOLVED", "VERDICT"});
  header.insert(header.end(), {"UPSTREAM", "STATE", "UP", "DOWN", "AGE"});
  std::vector<std::vector<std::string>> rows{header};
  for (const auto& c : conns) {
    auto up = c.counters ? c.counters->client_to_upstream.load() : 0;
    auto down = c.counters ? c.counters->upstream_to_client.load() : 0;
    std::string state = c.protocol.empty() ? c.state : c.protocol + " " + c.state;
    if (c.counters && c.counters->mode != relay::Mode::Auto)
      state += std::string("/") + relay::to_string(c.counters->mode);
    std::vector<std::string> row{std::to_string(c.id), c.client.to_string(),
                                 config::format_endpoint(c.peer), cell(c.listener),
                                 cell(c.server_name, 48),
                                 cell(c.rule.empty() ? c.backend : c.backend + " (" + c.rule + ")")};
    if (forward) {
      const conns::ConnInfo::Forward none;
      const auto& f = c.forward ? *c.forward : none;
      row.insert(row.end(), {cell(f.requested, 54), cell(f.resolved, 48), cell(f.verdict, 24)});
    }
    row.insert(row.end(), {cell(c.upstream), cell(state), format_bytes(up), format_bytes(down),
                           format_duration(std::chrono::duration_cast<std::chrono::seconds>(now - c.started))});
    rows.push_back(std::move(row));
  }
  return table(rows);
}

std::string format_route(const RouteQuestion& q, const RouteAnswer& a) {
  if (a.backend.empty())
    return "no route: listener " + q.listener + " would refuse " +
           (q.name.empty() ? std::string("a connection without a name") : "'" + q.name + "'") +
           " (end=no_route)\n";
  std::string out = a.backend + "  (" + a.rule;
  if (!a.detail.empty()) out += ": " + a.detail;
  return out + ")\n";
}

std::string format_top(const std::vector<conns::ConnInfo>& before,
                       const std::vector<conns::ConnInfo>& now,
                       std::chrono::duration<double> elapsed, std::size_t rows, TimePoint wall) {
  struct Moved {
    const conns::ConnInfo* conn;
    std::uint64_t up, down;  // bytes each way since `before`
  };
  auto bytes = [](const conns::ConnInfo& c) {
    return c.counters ? std::pair{c.counters->client_to_upstream.load(),
                                  c.counters->upstream_to_client.load()}
                      : std::pair<std::uint64_t, std::uint64_t>{0, 0};
  };
  std::map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> was;
  for (const auto& c : before) was[c.id] = bytes(c);
  std::vector<Moved> moved;
  for (const auto& c : now) {
    auto [up, down] = bytes(c);
    auto [up0, down0] = was.count(c.id) ? was[c.id] : std::pair<std::uint64_t, std::uint64_t>{0, 0};
    moved.push_back({&c, up - std::min(up, up0), down - std::min(down, down0)});
  }
  std::stable_sort(moved.begin(), moved.end(), [](const Moved& a, const Moved& b) {
    return a.up + a.down > b.up + b.down;
  });
  const double seconds = std::max(elapsed.count(), 1e-3);
  auto rate = [&](std::uint64_t n) {
    return format_bytes(static_cast<std::uint64_t>(static_cast<double>(n) / seconds)) + "/s";
  };
  std::string out = "connections: " + std::to_string(now.size()) + " live, the busiest " +
                    std::to_string(std::min(rows, now.size())) + " over the last " +
                    std::to_string(static_cast<int>(seconds * 1000)) + "ms\n";
  std::vector<std::vector<std::string>> conn_rows{
      {"ID", "CLIENT", "LISTENER", "SNI", "BACKEND", "RELAY", "UP/s", "DOWN/s", "TOTAL", "AGE"}};
  struct BackendLoad {
    std::size_t conns = 0;
    std::uint64_t up = 0, down = 0;
  };
  std::map<std::string, BackendLoad> backends;
  for (std::size_t i = 0; i < moved.size(); ++i) {
    const auto& c = *moved[i].conn;
    auto& b = backends[c.backend.empty() ? "-" : c.backend];
    ++b.conns;
    b.up += moved[i].up;
    b.down += moved[i].down;
    if (i >= rows) continue;
    auto [up, down] = bytes(c);
    const auto mode = c.counters ? c.counters->mode.load() : relay::Mode::Auto;
    conn_rows.push_back({std::to_string(c.id), c.client.to_string(), cell(c.listener),
                         cell(c.server_name, 48), cell(c.backend),
                         mode == relay::Mode::Auto ? c.state : relay::to_string(mode),
                         rate(moved[i].up), rate(moved[i].down), format_bytes(up + down),
                         format_duration(std::chrono::duration_cast<std::chrono::seconds>(
                             wall - c.started))});
  }
  out += table(conn_rows) + "\n";
  std::vector<std::pair<std::string, BackendLoad>> by_load(backends.begin(), backends.end());
  std::stable_sort(by_load.begin(), by_load.end(), [](const auto& a, const auto& b) {
    return a.second.up + a.second.down > b.second.up + b.second.down;
  });
  std::vector<std::vector<std::string>> backend_rows{{"BACKEND", "CONNS", "UP/s", "DOWN/s"}};
  for (const auto& [name, b] : by_load)
    backend_rows.push_back({cell(name), std::to_string(b.conns), rate(b.up), rate(b.down)});
  return out + table(backend_rows);
}

std::string format_stats(const nlohmann::json& stats) {
  std::vector<std::vector<std::string>> rows;
  flatten(stats, "", rows);
  return table(rows);
}

std::string format_ban_made(const bans::BanEntry& ban, TimePoint now) {
  if (!ban.expires) return "banned " + ban.prefix.str() + " permanently";
  // The length as made (expiry minus creation, both whole seconds on the wire), so `--for 1h`
  // reads 1h00m however long the reply took; from `now` when the creation time is unknown.
  auto from = ban.created.time_since_epoch().count() ? ban.created : now;
  auto left = std::chrono::round<std::chrono::seconds>(*ban.expires - from);
  return "banned " + ban.prefix.str() + " for " + format_duration(left) + " (until " +
         format_time(*ban.expires) + ")";
}

}  // namespace snigate::control
