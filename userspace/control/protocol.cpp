#include "control/protocol.h"

#include <cstdlib>

#include "config/config.h"
#include "config/endpoint.h"

namespace snigate::control {

using nlohmann::json;
using Clock = bans::Clock;

namespace {

std::int64_t unix_seconds(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

Clock::time_point from_unix(std::int64_t s) { return Clock::time_point(std::chrono::seconds(s)); }

json optional_time(const std::optional<Clock::time_point>& t) {
  return t ? json(unix_seconds(*t)) : json(nullptr);
}

// Small typed readers: a missing key yields the fallback, a key of the wrong type an error.
struct Reader {
  const json& j;
  std::string& error;

  bool fail(const std::string& key, const char* expected) {
    if (error.empty()) error = "'" + key + "' must be " + expected;
    return false;
  }
  std::string str(const std::string& key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return {};
    if (!it->is_string()) return fail(key, "a string"), std::string();
    return it->get<std::string>();
  }
  std::optional<std::int64_t> integer(const std::string& key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_number_integer()) return fail(key, "an integer"), std::nullopt;
    return it->get<std::int64_t>();
  }
  std::optional<Clock::time_point> time(const std::string& key) {
    auto s = integer(key);
    if (!s) return std::nullopt;
    if (*s < 0 || *s > bans::kLatestUnixSeconds)
      return fail(key, "seconds since 1970 (UTC), before the year 2100"), std::nullopt;
    return from_unix(*s);
  }
  bool boolean(const std::string& key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return false;
    if (!it->is_boolean()) return fail(key, "true or false");
    return it->get<bool>();
  }
  std::optional<net::Prefix> prefix(const std::string& key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return fail(key, "an address or CIDR string"), std::nullopt;
    std::string why;
    auto p = net::Prefix::parse(it->get<std::string>(), &why);
    if (!p && error.empty()) error = why;
    return p;
  }
};

}  // namespace

std::string default_control_socket() {
  const char* env = std::getenv(kControlSocketEnv);
  return env && *env ? std::string(env) : config::DaemonConfig{}.control_socket;
}

json to_json(const bans::BanEntry& e) {
  return json{{"prefix", e.prefix.str()},       {"created", unix_seconds(e.created)},
              {"expires", optional_time(e.expires)}, {"reason", e.reason},
              {"source", e.source},             {"jail", e.jail},
              {"matched_at", optional_time(e.matched_at)}, {"sample", e.sample},
              {"drops", e.drops},               {"offences", e.offences}};
}

json to_json(const conns::ConnInfo& c) {
  json j{{"id", c.id},
         {"listener", c.listener},
         {"protocol", c.protocol},
         {"peer", config::format_endpoint(c.peer)},
         {"client", c.client.to_string()},
         {"server_name", c.server_name},
         {"alpn", c.alpn},
         {"backend", c.backend},
         {"rule", c.rule},
         {"upstream", c.upstream},
         {"state", c.state},
         {"relay_mode", c.counters ? relay::to_string(c.counters->mode) : ""},
         {"requested", c.forward ? c.forward->requested : ""},
         {"resolved", c.forward ? c.forward->resolved : ""},
         {"verdict", c.forward ? c.forward->verdict : ""},
         {"started", unix_seconds(c.started)},
         {"bytes_up", c.counters ? c.counters->client_to_upstream.load() : 0},
         {"bytes_down", c.counters ? c.counters->upstream_to_client.load() : 0}};
  return j;
}

json to_json(const bans::BanRequest& r) {
  json j{{"prefix", r.prefix.str()},
         {"duration", r.duration ? json(r.duration->count()) : json(nullptr)},
         {"reason", r.reason},
         {"jail", r.jail},
         {"matched_at", optional_time(r.matched_at)},
         {"sample", r.sample},
         {"force", r.force}};
  if (!r.source.empty()) j["source"] = r.source;
  if (!r.id.empty()) j["id"] = r.id;
  return j;
}

std::optional<bans::BanEntry> ban_entry_from_json(const json& j, std::string& error) {
  if (!j.is_object()) return error = "a ban must be a JSON object", std::nullopt;
  Reader r{j, error};
  bans::BanEntry e;
  auto prefix = r.prefix("prefix");
  if (prefix) e.prefix = *prefix;
  e.created = r.time("created").value_or(Clock::time_point{});
  e.expires = r.time("expires");
  e.reason = r.str("reason");
  e.source = r.str("source");
  e.jail = r.str("jail");
  e.matched_at = r.time("matched_at");
  e.sample = r.str("sample");
  auto drops = r.integer("drops");
  auto offences = r.integer("offences");
  if (drops && *drops < 0) r.fail("drops", "a count");
  if (offences && *offences < 0) r.fail("offences", "a count");
  if (!error.empty()) return std::nullopt;
  e.drops = static_cast<std::uint64_t>(drops.value_or(0));
  e.offences = static_cast<std::uint32_t>(offences.value_or(1));
  return e;
}

std::optional<conns::ConnInfo> conn_from_json(const json& j, std::string& error) {
  if (!j.is_object()) return error = "a connection must be a JSON object", std::nullopt;
  Reader r{j, error};
  conns::ConnInfo c;
  c.id = static_cast<std::uint64_t>(r.integer("id").value_or(0));
  c.listener = r.str("listener");
  c.protocol = r.str("protocol");
  if (auto peer = config::parse_listen_address(r.str("peer"), nullptr)) c.peer = *peer;
  if (auto client = net::Prefix::parse(r.str("client"))) c.client = client->address();
  c.server_name = r.str("server_name");
  c.alpn = r.str("alpn");
  c.backend = r.str("backend");
  c.rule = r.str("rule");
  c.upstream = r.str("upstream");
  c.state = r.str("state");
  conns::ConnInfo::Forward f{r.str("requested"), r.str("resolved"), r.str("verdict")};
  if (!f.requested.empty() || !f.resolved.empty() || !f.verdict.empty()) c.forward = std::move(f);
  c.started = r.time("started").value_or(Clock::time_point{});
  auto counters = std::make_shared<relay::Counters>();
  counters->client_to_upstream = static_cast<std::uint64_t>(r.integer("bytes_up").value_or(0));
  counters->upstream_to_client = static_cast<std::uint64_t>(r.integer("bytes_down").value_or(0));
  counters->mode = relay::parse_mode(r.str("relay_mode")).value_or(relay::Mode::Auto);
  c.counters = counters;
  if (!error.empty()) return std::nullopt;
  return c;
}

std::optional<bans::BanRequest> ban_request_from_json(const json& j, std::string& error) {
  if (!j.is_object()) return error = "a ban request must be a JSON object", std::nullopt;
  Reader r{j, error};
  bans::BanRequest req;
  auto prefix = r.prefix("prefix");
  if (prefix) req.prefix = *prefix;
  if (auto d = r.integer("duration")) {
    if (*d <= 0 || *d > bans::kMaxBanDuration.count())
      r.fail("duration", ("a positive number of seconds up to " +
                          std::to_string(bans::kMaxBanDuration.count()) +
                          " (ten years); omit it for a permanent ban").c_str());
    else
      req.duration = std::chrono::seconds(*d);
  }
  req.reason = r.str("reason");
  req.source = r.str("source");
  req.jail = r.str("jail");
  req.matched_at = r.time("matched_at");
  req.sample = r.str("sample");
  req.force = r.boolean("force");
  req.id = r.str("id");
  if (req.id.size() > 128) r.fail("id", "at most 128 characters");
  if (!error.empty()) return std::nullopt;
  return req;
}

json to_json(const RouteAnswer& a) {
  return json{{"backend", a.backend}, {"rule", a.rule}, {"detail", a.detail}};
}

json to_json(const RouteQuestion& q) {
  return json{{"listener", q.listener}, {"name", q.name}, {"alpn", q.alpn}, {"client", q.client}};
}

std::optional<RouteQuestion> route_question_from_json(const json& j, std::string& error) {
  if (!j.is_object()) return error = "a route question must be a JSON object", std::nullopt;
  Reader r{j, error};
  RouteQuestion q;
  q.listener = r.str("listener");
  if (q.listener.empty() && error.empty()) r.fail("listener", "a listener name");
  q.name = r.str("name");
  q.client = r.str("client");
  if (auto it = j.find("alpn"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) r.fail("alpn", "an array of strings");
    for (const auto& a : *it) {
      if (!a.is_string()) {
        r.fail("alpn", "an array of strings");
        break;
      }
      q.alpn.push_back(a.get<std::string>());
    }
  }
  if (!error.empty()) return std::nullopt;
  return q;
}

std::optional<RouteAnswer> route_answer_from_json(const json& j, std::string& error) {
  if (!j.is_object()) return error = "a route answer must be a JSON object", std::nullopt;
  Reader r{j, error};
  RouteAnswer a;
  a.backend = r.str("backend");
  a.rule = r.str("rule");
  a.detail = r.str("detail");
  if (!error.empty()) return std::nullopt;
  return a;
}

namespace {

// A JSON list decoded item by item; the first bad item empties it and leaves its error.
template <typename Item>
std::vector<Item> list_from_json(const json& array, const char* what, std::string& error,
                                 std::optional<Item> (*decode)(const json&, std::string&)) {
  std::vector<Item> out;
  if (!array.is_array()) return error = std::string("'") + what + "' must be a list", out;
  for (const auto& item : array) {
    auto e = decode(item, error);
    if (!e) return {};
    out.push_back(std::move(*e));
  }
  return out;
}

}  // namespace

std::vector<bans::BanEntry> ban_entries_from_json(const json& array, std::string& error) {
  return list_from_json(array, "bans", error, &ban_entry_from_json);
}

std::vector<conns::ConnInfo> conns_from_json(const json& array, std::string& error) {
  return list_from_json(array, "conns", error, &conn_from_json);
}

json error_reply(const std::string& message) { return json{{"ok", false}, {"error", message}}; }

}  // namespace snigate::control
