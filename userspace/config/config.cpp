#include "config/config.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <sstream>

#include "config/endpoint.h"
#include "config/route_regex.h"
#include "config/server.h"

namespace snigate::config {
namespace {

constexpr std::string_view kEmbeddedDefault = R"(# snigate demo: runs without a file and without root.
[daemon]
relay = "auto"
control_socket = "/tmp/snigate-demo-control.sock"
access_log = "stdout"

[[listener]]
name = "demo-tls"
listen = "127.0.0.1:9443"
protocol = "tls"
table = "demo"

[[listener]]
name = "demo-http"
listen = "127.0.0.1:9080"
protocol = "http"
table = "demo"

[table.demo]
default = "local"

[backend.local]
servers = ["127.0.0.1:8443"]

# Bans work in the demo (snigatectl -c: ban, list, unban) but stay apart from a real
# install's: without root they hold at accept time only, and their store is under /tmp.
[bans]
store = "/tmp/snigate-demo-bans.db"
pin_dir = "/sys/fs/bpf/snigate-demo"
)";

// Sections parsed by other areas from Config::raw; here only their shape is checked.
constexpr std::string_view kForeignTables[] = {"bans", "remote_ban", "resolver", "metrics",
                                              "crowdsec"};

const toml::node& child(const toml::table& t, std::string_view key) { return *t.get(key); }

std::vector<std::string> names_of(const auto& map) {
  std::vector<std::string> out;
  for (const auto& [name, value] : map) out.push_back(name);
  return out;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out.empty() ? "none" : out;
}

// ---- [daemon] ----

DaemonConfig parse_daemon(const toml::table& root) {
  DaemonConfig d;
  const toml::node* node = root.get("daemon");
  if (!node) return d;
  const toml::table* t = node->as_table();
  if (!t) fail(*node, "[daemon] must be a table");
  check_keys(*t, {"workers", "relay", "sockmap_queue_limit", "sockmap_handoff_after",
                  "control_socket", "access_log",
                  "access_log_format", "log_level", "max_connections", "max_pipes",
                  "max_connections_per_client",
                  "max_prereads_per_client", "drain_timeout", "idle_timeout", "user", "group",
                  "quic_kernel_interfaces"},
             "daemon");
  d.workers = static_cast<unsigned>(get_int(*t, "workers", 0, 0, 1024));
  if (t->contains("relay")) {
    auto mode = relay::parse_mode(get_string(*t, "relay", ""));
    if (!mode) fail(child(*t, "relay"), "'relay' must be one of auto, sockmap, splice, copy");
    d.relay = *mode;
  }
  // Nothing else bounds this queue (relay_abi.h): the limit is the kernel memory a stalled
  // reader may cost per direction. Large values serve measurements of the kernel path alone.
  d.sockmap_queue_limit = static_cast<std::uint64_t>(
      get_int(*t, "sockmap_queue_limit", static_cast<std::int64_t>(d.sockmap_queue_limit),
              64 * 1024, std::int64_t{1} << 40));
  d.sockmap_handoff_after = static_cast<std::uint64_t>(
      get_int(*t, "sockmap_handoff_after", static_cast<std::int64_t>(d.sockmap_handoff_after), 0,
              std::int64_t{1} << 40));
  d.control_socket = get_string(*t, "control_socket", d.control_socket);
  if (d.control_socket.empty() || d.control_socket.front() != '/')
    fail(child(*t, "control_socket"), "'control_socket' must be an absolute path");
  d.access_log = get_string(*t, "access_log", d.access_log);
  if (d.access_log.empty())
    fail(child(*t, "access_log"), "'access_log' must be \"stdout\" or a file path");
  if (t->contains("access_log_format")) {
    const std::string f = get_string(*t, "access_log_format", "");
    if (f != "text" && f != "json")
      fail(child(*t, "access_log_format"),
           "'access_log_format' must be \"text\" (key=value words) or \"json\" (one object "
           "per line)");
    d.access_log_format = f == "json" ? AccessLogFormat::Json : AccessLogFormat::Text;
  }
  d.user = get_string(*t, "user", d.user);
  d.group = get_string(*t, "group", d.group);
  if (!d.group.empty() && d.user.empty())
    fail(child(*t, "group"), "'group' needs 'user': snigated changes group only when it drops "
                             "root for a user");
  d.log_level = get_string(*t, "log_level", d.log_level);
  static const std::vector<std::string> levels = {"trace", "debug", "info",    "warn",
                                                  "error", "critical", "off"};
  if (std::find(levels.begin(), levels.end(), d.log_level) == levels.end())
    fail(child(*t, "log_level"), "'log_level' must be one of " + join(levels) +
                                     did_you_mean(d.log_level, levels));
  if (t->contains("max_connections"))
    d.max_connections = static_cast<std::size_t>(get_int(
        *t, "max_connections", static_cast<std::int64_t>(d.kDefaultMaxConnections), 1,
        10'000'000));
  if (t->contains("max_pipes"))
    d.max_pipes = static_cast<std::size_t>(get_int(*t, "max_pipes", 0, 0, 10'000'000));
  d.max_connections_per_client = static_cast<std::size_t>(
      get_int(*t, "max_connections_per_client",
              static_cast<std::int64_t>(d.max_connections_per_client), 0, 10'000'000));
  d.max_prereads_per_client = static_cast<std::size_t>(get_int(
      *t, "max_prereads_per_client", static_cast<std::int64_t>(d.max_prereads_per_client), 0,
      10'000'000));
  // A drain longer than a day is a typo, not a plan: a stop would hang that long.
  d.drain_timeout = get_duration(*t, "drain_timeout", d.drain_timeout, std::chrono::hours(24));
  d.idle_timeout = get_duration(*t, "idle_timeout", d.idle_timeout);
  if (d.idle_timeout.count() == 0)
    fail(child(*t, "idle_timeout"), "'idle_timeout' must be more than zero");
  d.quic_kernel_interfaces = get_string_list(*t, "quic_kernel_interfaces");
  return d;
}

// ---- [[listener]] ----

std::optional<Protocol> parse_protocol(std::string_view text) {
  if (text == "tls") return Protocol::Tls;
  if (text == "http") return Protocol::Http;
  if (text == "connect") return Protocol::Connect;
  if (text == "quic") return Protocol::Quic;
  return std::nullopt;
}

void check_auth(const toml::table& t) {
  if (!t.contains("auth")) return;
  std::string auth = get_string(t, "auth", "");
  if (auth.empty()) return;
  auto colon = auth.find(':');
  std::string_view kind = std::string_view(auth).substr(0, colon);
  if (kind == "token" && colon != std::string::npos && colon + 1 < auth.size()) return;
  if (kind == "basic" && colon != std::string::npos) {
    auto second = auth.find(':', colon + 1);
    if (second != std::string::npos && second > colon + 1) return;
  }
  fail(child(t, "auth"), "'auth' must be \"basic:USER:PASSWORD\" or \"token:SECRET\"");
}

// The flow bounds of a quic listener; the keys on any other listener, and what QUIC cannot
// carry, are errors at their line.
void parse_quic(const toml::table& t, ListenerConfig& l) {
  if (l.protocol != Protocol::Quic) {
    for (auto key : {"max_flows", "flow_idle_timeout", "preread_datagrams"})
      if (t.contains(key))
        fail(child(t, key), std::string("'") + key + "' belongs to quic listeners (protocol = "
                                                   "\"quic\")");
    return;
  }
  // A PROXY header precedes a TCP stream; a QUIC datagram has no place for one, and no common
  // QUIC server reads one.
  for (auto key : {"proxy_protocol_in", "trusted_proxies"})
    if (t.contains(key))
      fail(child(t, key), std::string("'") + key + "' cannot apply to a quic listener: QUIC "
                                                 "datagrams carry no PROXY header; remove it");
  if (t.contains("defer_accept"))
    fail(child(t, "defer_accept"), "'defer_accept' belongs to TCP listeners: a quic listener "
                                   "accepts nothing; remove it");
  // RFC 9000 14.1: a client pads the datagram of its first Initial to at least 1200 bytes.
  if (l.preread_max < 1200)
    fail(child(t, "preread_max"), "a quic listener holds whole datagrams of at least 1200 bytes "
                                  "(RFC 9000 14.1): 'preread_max' must be 1200 or more");
  QuicLimits& q = l.quic;
  q.max_flows = static_cast<std::size_t>(
      get_int(t, "max_flows", static_cast<std::int64_t>(q.max_flows), 1, 10'000'000));
  q.flow_idle_timeout = get_duration(t, "flow_idle_timeout", q.flow_idle_timeout,
                                     std::chrono::hours(24));
  if (q.flow_idle_timeout.count() == 0)
    fail(child(t, "flow_idle_timeout"), "'flow_idle_timeout' must be more than zero");
  q.preread_datagrams = static_cast<std::size_t>(
      get_int(t, "preread_datagrams", static_cast<std::int64_t>(q.preread_datagrams), 1, 256));
}

ListenerConfig parse_listener(const toml::table& t) {
  check_keys(t, {"name", "listen", "protocol", "table", "proxy_protocol_in", "trusted_proxies",
                 "preread_timeout", "preread_max", "allow", "allow_private", "auth", "clients",
                 "max_flows", "flow_idle_timeout", "preread_datagrams", "defer_accept"},
             "[listener]");
  ListenerConfig l;
  std::string listen = require_string(t, "listen", "[listener]");
  std::string error;
  auto endpoint = parse_listen_address(listen, &error);
  if (!endpoint) fail(child(t, "listen"), "listen = \"" + listen + "\": " + error);
  l.listen = *endpoint;
  l.name = get_string(t, "name", listen);
  if (l.name.empty()) fail(child(t, "name"), "'name' cannot be empty");

  std::string protocol = get_string(t, "protocol", "tls");
  auto parsed = parse_protocol(protocol);
  if (!parsed)
    fail(child(t, "protocol"), "'protocol' must be tls, http, connect or quic" +
                                   did_you_mean(protocol, {"tls", "http", "connect", "quic"}));
  l.protocol = *parsed;

  if (l.protocol == Protocol::Connect) {
    if (t.contains("table"))
      fail(child(t, "table"), "a connect listener takes its destinations from 'allow', not a "
                              "table; remove 'table'");
    l.allow = get_string_list(t, "allow");
    if (l.allow.empty())
      throw ConfigError(t.source(), "listener " + l.name +
                                        ": a connect listener needs an 'allow' list (names, "
                                        "*.wildcards, ~regex, addresses or CIDRs); it is never "
                                        "open to everything");
    l.allow_private = get_bool(t, "allow_private", false);
    l.clients = get_prefix_list(t, "clients");
    if (t.contains("clients") && l.clients.empty())
      fail(child(t, "clients"), "clients = [] lets nobody use this proxy; list addresses or "
                                "CIDRs, or remove the key to serve every client");
    check_auth(t);
    l.auth = get_string(t, "auth", "");
  } else {
    for (auto key : {"allow", "allow_private", "auth"})
      if (t.contains(key))
        fail(child(t, key), std::string("'") + key + "' belongs to connect listeners (protocol = "
                                                   "\"connect\") or forward backends");
    if (t.contains("clients"))
      fail(child(t, "clients"), "'clients' belongs to connect listeners; a " +
                                    std::string(to_string(l.protocol)) +
                                    " listener routes by client address with [[table.X.rule]] "
                                    "client = [...]");
    if (!t.contains("table"))
      throw ConfigError(t.source(), "listener " + l.name + ": a " + to_string(l.protocol) +
                                        " listener needs 'table' naming a [table.X] section");
    l.table = get_string(t, "table", "");
  }

  // A preread holds a connection slot for a client that has sent nothing useful yet.
  l.preread_timeout = get_duration(t, "preread_timeout", l.preread_timeout, std::chrono::minutes(10));
  if (l.preread_timeout.count() == 0)
    fail(child(t, "preread_timeout"), "'preread_timeout' must be more than zero");
  l.preread_max = static_cast<std::size_t>(get_int(t, "preread_max", 16384, 512, 1 << 20));
  parse_quic(t, l);
  l.defer_accept = get_bool(t, "defer_accept", l.defer_accept);
  l.proxy_protocol_in = get_bool(t, "proxy_protocol_in", false);
  l.trusted_proxies = get_prefix_list(t, "trusted_proxies");
  if (l.proxy_protocol_in && l.trusted_proxies.empty())
    fail(child(t, "proxy_protocol_in"),
         "proxy_protocol_in = true needs 'trusted_proxies' (the addresses or CIDRs allowed to "
         "send a PROXY header); anyone else could forge client addresses");
  if (!l.proxy_protocol_in && !l.trusted_proxies.empty())
    fail(child(t, "trusted_proxies"), "'trusted_proxies' has no effect without "
                                      "proxy_protocol_in = true");

  return l;
}

std::vector<ListenerConfig> parse_listeners(const toml::table& root) {
  std::vector<ListenerConfig> out;
  const toml::node* node = root.get("listener");
  if (!node) return out;
  const toml::array* array = node->as_array();
  if (!array || !array->is_array_of_tables())
    fail(*node, "listeners are written [[listener]] (an array of tables)");
  std::set<std::string> names;
  // TCP and UDP ports are apart: tls on TCP 443 and quic on UDP 443 share an address.
  std::set<std::pair<bool, boost::asio::ip::tcp::endpoint>> endpoints;
  for (const auto& item : *array) {
    ListenerConfig l = parse_listener(*item.as_table());
    const toml::table& t = *item.as_table();
    // Port 0 asks for an ephemeral port, so several may share it.
    if (l.listen.port() != 0 &&
        !endpoints.insert({l.protocol == Protocol::Quic, l.listen}).second)
      fail(child(t, "listen"), "two listeners listen on " + get_string(t, "listen", ""));
    // Unnamed listeners on ephemeral ports share "HOST:0"; number them rather than refuse.
    if (!t.contains("name") && names.count(l.name))
      l.name += "#" + std::to_string(out.size() + 1);
    if (!names.insert(l.name).second)
      throw ConfigError(t.source(), "two listeners are named '" + l.name + "'");
    out.push_back(std::move(l));
  }
  return out;
}

// ---- [backend.X] ----

BackendConfig parse_backend(const std::string& name, const toml::node& node) {
  const toml::table* t = node.as_table();
  std::string where = "backend." + name;
  if (!t) fail(node, "[" + where + "] must be a table");
  check_keys(*t, {"servers", "proxy_protocol", "connect_timeout", "max_tries", "forward", "allow",
                  "allow_private"},
             where);
  BackendConfig b;
  b.name = name;
  if (t->contains("forward") == t->contains("servers"))
    throw ConfigError(t->source(), "[" + where + "] needs either 'servers' or 'forward = PORT' "
                                   "(connect to the SNI name itself), not both");
  if (t->contains("servers")) {
    const toml::node& servers = child(*t, "servers");
    std::vector<const toml::node*> items;
    if (auto arr = servers.as_array()) {
      for (const auto& item : *arr) items.push_back(&item);
    } else {
      items.push_back(&servers);
    }
    if (items.empty()) fail(servers, "[" + where + "] 'servers' is empty");
    for (const toml::node* item : items) {
      auto text = item->value_exact<std::string>();
      if (!text)
        fail(*item, "'servers' must hold strings such as \"192.0.2.10:443 weight=2 backup\"");
      std::string error;
      auto server = parse_server(*text, &error);
      if (!server) fail(*item, "server \"" + *text + "\": " + error);
      b.servers.push_back(std::move(*server));
    }
    if (std::all_of(b.servers.begin(), b.servers.end(), [](const auto& s) { return s.backup; }))
      fail(servers, "[" + where + "] has only backup servers; at least one must be a primary");
    for (auto key : {"allow", "allow_private"})
      if (t->contains(key))
        fail(child(*t, key), std::string("'") + key + "' only applies to forward backends "
                                                    "(forward = PORT)");
  } else {
    b.forward_port = static_cast<std::uint16_t>(get_int(*t, "forward", 0, 1, 65535));
    b.allow = get_string_list(*t, "allow");
    if (b.allow.empty())
      throw ConfigError(t->source(), "[" + where + "] forwards to the client's SNI name and "
                                     "needs an 'allow' list (names, *.wildcards, ~regex); it "
                                     "is never open to everything");
    b.allow_private = get_bool(*t, "allow_private", false);
  }
  std::string pp = get_string(*t, "proxy_protocol", "off");
  if (pp == "off") b.proxy_protocol = ProxyProtocol::Off;
  else if (pp == "v1") b.proxy_protocol = ProxyProtocol::V1;
  else if (pp == "v2") b.proxy_protocol = ProxyProtocol::V2;
  else
    fail(child(*t, "proxy_protocol"), "'proxy_protocol' must be off, v1 or v2" +
                                          did_you_mean(pp, {"off", "v1", "v2"}));
  b.connect_timeout = get_duration(*t, "connect_timeout", b.connect_timeout, std::chrono::minutes(10));
  if (b.connect_timeout.count() == 0)
    fail(child(*t, "connect_timeout"), "'connect_timeout' must be more than zero");
  b.max_tries = static_cast<unsigned>(get_int(*t, "max_tries", 3, 1, 100));
  return b;
}

std::map<std::string, BackendConfig> parse_backends(const toml::table& root) {
  std::map<std::string, BackendConfig> out;
  const toml::node* node = root.get("backend");
  if (!node) return out;
  const toml::table* t = node->as_table();
  if (!t) fail(*node, "backends are written [backend.NAME]");
  for (const auto& [key, value] : *t)
    out.emplace(std::string(key.str()), parse_backend(std::string(key.str()), value));
  return out;
}

// ---- [table.X] ----

toml::source_region key_region(const toml::key& key, const toml::node& value) {
  return key.source().begin.line != 0 ? key.source() : value.source();
}

std::string normalize_name(std::string_view name) {
  std::string out(name);
  if (!out.empty() && out.back() == '.') out.pop_back();
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Letters, digits, '-', '_' and dots between non-empty labels; IP literals pass too, since
// http listeners route by Host, which may be an address.
std::string bad_name_reason(std::string_view name) {
  if (name.empty()) return "an empty name cannot match";
  if (name.find('*') != std::string_view::npos)
    return "'*' is only allowed as the whole first label (\"*.example.org\"); use \"~regex\" "
           "for other patterns";
  if (name.front() == '[' && name.back() == ']') return "";
  if (std::any_of(name.begin(), name.end(), [](unsigned char c) { return c >= 0x80; }))
    return "a non-ASCII name never arrives as written: clients send an internationalised "
           "name in its punycode form (xn--...); write that instead (idn2 NAME prints it)";
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return "empty label (\"..\" or a leading dot)";
      label = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':') {
      ++label;
    } else {
      return "character '" + escaped(std::string_view(&c, 1)) + "' cannot appear in a host name";
    }
  }
  return "";
}

// A name as a table key or a rule's `name` writes it: "~regex", "*.wildcard" or exact.
RouteEntry parse_route_name(std::string_view k, const std::string& backend,
                            const toml::source_region& where) {
  RouteEntry entry{RouteEntry::Kind::Exact, "", backend, where};
  if (k.starts_with('~')) {
    entry.kind = RouteEntry::Kind::Regex;
    entry.pattern = std::string(k.substr(1));
    std::string error;
    if (!compile_route_regex(entry.pattern, &error))
      throw ConfigError(entry.where, "regex \"" + escaped(entry.pattern) + "\": " + error);
  } else if (k.starts_with("*.")) {
    entry.kind = RouteEntry::Kind::Wildcard;
    entry.pattern = normalize_name(k.substr(2));
    std::string why = bad_name_reason(entry.pattern);
    if (!why.empty()) throw ConfigError(entry.where, "wildcard \"" + escaped(k) + "\": " + why);
  } else {
    entry.pattern = normalize_name(k);
    std::string why = bad_name_reason(entry.pattern);
    if (!why.empty()) throw ConfigError(entry.where, "name \"" + escaped(k) + "\": " + why);
  }
  return entry;
}

RouteRule parse_rule(const std::string& table, const toml::table& t) {
  const std::string where = "[[table." + table + ".rule]]";
  check_keys(t, {"name", "alpn", "client", "backend"}, "[table." + table + ".rule]");
  RouteRule rule;
  rule.where = t.source();
  rule.backend = require_string(t, "backend", where);
  if (t.contains("name")) {
    auto name = t.get("name")->value_exact<std::string>();
    if (!name) fail(child(t, "name"), where + " 'name' is one name: \"host\", \"*.domain\" or "
                                      "\"~regex\" (write one rule per name)");
    rule.name = parse_route_name(*name, rule.backend, child(t, "name").source());
  }
  if (t.contains("alpn")) {
    rule.alpn = get_string_list(t, "alpn");
    if (rule.alpn.empty()) fail(child(t, "alpn"), where + " alpn = [] never matches; list the "
                                                  "protocols (\"acme-tls/1\", \"h2\") or remove it");
    for (const auto& a : rule.alpn)
      if (a.empty() || a.size() > 255)
        fail(child(t, "alpn"), where + " alpn \"" + escaped(a) + "\": a protocol name is 1 to "
                                                              "255 bytes");
  }
  if (t.contains("client")) {
    rule.client = get_prefix_list(t, "client", where + " ");
    if (rule.client.empty())
      fail(child(t, "client"), where + " client = [] never matches; list addresses or CIDRs "
                                       "(\"10.0.0.0/8\", \"fd00::/8\") or remove it");
  }
  if (!rule.name && rule.alpn.empty() && rule.client.empty())
    fail(t, where + " has no condition (name, alpn or client), so it would take every "
                    "connection; write that as default = \"" + escaped(rule.backend) + "\" instead");
  return rule;
}

TableConfig parse_table(const std::string& name, const toml::node& node) {
  const toml::table* t = node.as_table();
  std::string where = "table." + name;
  if (!t) fail(node, "[" + where + "] must be a table of \"name\" = \"backend\" entries");
  TableConfig table;
  table.name = name;
  std::set<std::pair<RouteEntry::Kind, std::string>> seen;
  for (const auto& [key, value] : *t) {
    std::string_view k = key.str();
    if (k == "rule" && value.is_array()) {
      const toml::array& rules = *value.as_array();
      if (!rules.is_array_of_tables())
        fail(value, "rules are written [[" + where + ".rule]] (an array of tables)");
      for (const auto& item : rules) table.rules.push_back(parse_rule(name, *item.as_table()));
      continue;
    }
    auto backend = value.value_exact<std::string>();
    if (!backend)
      fail(value, "[" + where + "] \"" + escaped(key.str()) + "\" must name a backend");
    if (k == "default") {
      table.default_backend = *backend;
      continue;
    }
    if (k == "no_sni") {
      table.no_sni_backend = *backend;
      continue;
    }
    // A dotless near miss of a keyword is a typo, not a host name nobody would send.
    if (!k.starts_with('~') && !k.starts_with("*.") && k.find('.') == std::string_view::npos) {
      std::string keyword = did_you_mean(k, {"default", "no_sni", "rule"});
      if (!keyword.empty())
        throw ConfigError(key_region(key, value),
                          "\"" + escaped(k) + "\" would route a host of that name" + keyword);
    }
    RouteEntry entry = parse_route_name(k, *backend, key_region(key, value));
    if (!seen.insert({entry.kind, entry.pattern}).second)
      throw ConfigError(entry.where, "\"" + escaped(k) + "\" is listed twice in [" + where +
                                         "] (names ignore case and a trailing dot)");
    table.entries.push_back(std::move(entry));
  }
  // toml++ keeps keys sorted; regexes are tried in file order, so restore it.
  std::stable_sort(table.entries.begin(), table.entries.end(), [](const auto& a, const auto& b) {
    return std::pair(a.where.begin.line, a.where.begin.column) <
           std::pair(b.where.begin.line, b.where.begin.column);
  });
  return table;
}

std::map<std::string, TableConfig> parse_tables(const toml::table& root) {
  std::map<std::string, TableConfig> out;
  const toml::node* node = root.get("table");
  if (!node) return out;
  const toml::table* t = node->as_table();
  if (!t) fail(*node, "route tables are written [table.NAME]");
  for (const auto& [key, value] : *t)
    out.emplace(std::string(key.str()), parse_table(std::string(key.str()), value));
  return out;
}

}  // namespace

std::string spelling(const RouteEntry& entry) {
  const char* prefix = entry.kind == RouteEntry::Kind::Wildcard ? "*."
                       : entry.kind == RouteEntry::Kind::Regex  ? "~"
                                                                : "";
  return prefix + entry.pattern;
}

std::string describe(const RouteRule& rule) {
  std::string out;
  auto add = [&out](const char* what, const std::string& value) {
    out += (out.empty() ? "" : ", ") + std::string(what) + " " + value;
  };
  if (rule.name) add("name", spelling(*rule.name));
  if (!rule.alpn.empty()) add("alpn", join(rule.alpn));
  if (!rule.client.empty()) {
    std::vector<std::string> prefixes;
    for (const auto& p : rule.client) prefixes.push_back(p.str());
    add("client", join(prefixes));
  }
  return out;
}

namespace {

// ---- cross references ----

void check_references(const Config& c, const toml::table& root) {
  auto backend_names = names_of(c.backends);
  auto check_backend = [&](const std::string& backend, const toml::source_region& where,
                           const std::string& table) {
    if (c.backends.count(backend)) return;
    throw ConfigError(where, "[table." + table + "] names backend '" + backend +
                                 "', which is not defined" + did_you_mean(backend, backend_names) +
                                 "; defined backends: " + join(backend_names));
  };
  const toml::table* tables = root.get("table") ? root.get("table")->as_table() : nullptr;
  for (const auto& [name, table] : c.tables) {
    const toml::table& raw = *tables->get(name)->as_table();
    for (const auto& e : table.entries) check_backend(e.backend, e.where, name);
    for (const auto& r : table.rules) check_backend(r.backend, r.where, name);
    for (auto key : {"default", "no_sni"})
      if (raw.contains(key))
        check_backend(*raw.get(key)->value_exact<std::string>(), raw.get(key)->source(), name);
  }
  // A forward backend opens a TCP connection to the SNI name; a QUIC flow needs servers.
  for (const auto& l : c.listeners) {
    if (l.protocol != Protocol::Quic || !c.tables.count(l.table)) continue;
    const TableConfig& table = c.tables.at(l.table);
    auto check_udp = [&](const std::string& backend, const toml::source_region& where) {
      auto it = c.backends.find(backend);
      if (it != c.backends.end() && it->second.forward_port)
        throw ConfigError(where, "[table." + table.name + "] sends quic listener " + l.name +
                                     "'s flows to backend '" + backend + "', which forwards to "
                                     "the SNI name over TCP; give quic listeners a table whose "
                                     "backends list 'servers'");
    };
    const toml::table& raw = *tables->get(table.name)->as_table();
    for (const auto& e : table.entries) check_udp(e.backend, e.where);
    for (const auto& r : table.rules) check_udp(r.backend, r.where);
    for (auto key : {"default", "no_sni"})
      if (raw.contains(key))
        check_udp(*raw.get(key)->value_exact<std::string>(), raw.get(key)->source());
  }
  auto table_names = names_of(c.tables);
  const toml::array& listeners = *root.get("listener")->as_array();
  for (std::size_t i = 0; i < c.listeners.size(); ++i) {
    const auto& l = c.listeners[i];
    if (l.protocol == Protocol::Connect || c.tables.count(l.table)) continue;
    throw ConfigError(listeners[i].as_table()->get("table")->source(),
                      "listener " + l.name + " names table '" + l.table +
                          "', which is not defined" + did_you_mean(l.table, table_names) +
                          "; defined tables: " + join(table_names));
  }
}

void check_foreign_sections(const toml::table& root) {
  for (auto name : kForeignTables)
    if (auto node = root.get(name); node && !node->is_table())
      fail(*node, "[" + std::string(name) + "] must be a table");
  if (auto node = root.get("jail"); node && !(node->is_array() && node->as_array()->is_array_of_tables()))
    fail(*node, "jails are written [[jail]] (an array of tables)");
}

Config parse(toml::table root, std::string source) {
  check_keys(root, {"daemon", "listener", "table", "backend", "bans", "remote_ban", "jail",
                    "resolver", "metrics", "crowdsec"},
             "top level");
  check_foreign_sections(root);
  Config c;
  c.source = std::move(source);
  c.daemon = parse_daemon(root);
  c.listeners = parse_listeners(root);
  if (c.listeners.empty())
    throw ConfigError(c.source + ": no [[listener]]; add one such as\n[[listener]]\nlisten = "
                                 "\"0.0.0.0:443\"\nprotocol = \"tls\"\ntable = \"edge\"");
  c.backends = parse_backends(root);
  c.tables = parse_tables(root);
  check_references(c, root);
  c.raw = std::move(root);
  return c;
}

}  // namespace

const char* to_string(Protocol protocol) {
  switch (protocol) {
    case Protocol::Tls: return "tls";
    case Protocol::Http: return "http";
    case Protocol::Connect: return "connect";
    case Protocol::Quic: return "quic";
  }
  return "?";
}

const char* to_string(ProxyProtocol proxy_protocol) {
  switch (proxy_protocol) {
    case ProxyProtocol::Off: return "off";
    case ProxyProtocol::V1: return "v1";
    case ProxyProtocol::V2: return "v2";
  }
  return "?";
}

Config load_string(std::string_view text, std::string_view source_name) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    throw ConfigError(e.source(), std::string(e.description()));
  }
  return parse(std::move(root), std::string(source_name));
}

Config load_file(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    // toml++ reports an unreadable file as a parse error without a position.
    throw ConfigError(e.source(), std::string(e.description()));
  }
  return parse(std::move(root), path);
}

std::string_view embedded_default() { return kEmbeddedDefault; }

std::string check_summary(const Config& c) {
  std::ostringstream out;
  out << c.source << ": OK\n";
  out << "daemon: workers " << (c.daemon.workers ? std::to_string(c.daemon.workers) : "auto")
      << ", relay " << relay::to_string(c.daemon.relay) << ", control socket "
      << c.daemon.control_socket << ", access log " << c.daemon.access_log
      << (c.daemon.access_log_format == AccessLogFormat::Json ? " (json)" : "") << "\n";
  for (const auto& l : c.listeners) {
    out << "listener " << l.name << ": " << to_string(l.protocol) << " on "
        << format_endpoint(l.listen);
    if (l.protocol == Protocol::Quic)
      out << " (UDP), flows up to " << l.quic.max_flows << ", idle "
          << l.quic.flow_idle_timeout.count() << "ms";
    if (l.protocol == Protocol::Connect) {
      out << ", allow " << join(l.allow) << (l.allow_private ? ", private allowed" : "")
          << (l.auth.empty() ? "" : ", auth " + l.auth.substr(0, l.auth.find(':')));
    } else {
      out << ", table " << l.table;
    }
    if (l.proxy_protocol_in) {
      std::vector<std::string> trusted;
      for (const auto& p : l.trusted_proxies) trusted.push_back(p.str());
      out << ", PROXY in from " << join(trusted);
    }
    out << "\n";
  }
  for (const auto& [name, t] : c.tables) {
    out << "table " << name << ":\n";
    for (std::size_t i = 0; i < t.rules.size(); ++i)
      out << "  rule#" << i + 1 << " (" << describe(t.rules[i]) << ") -> " << t.rules[i].backend
          << "\n";
    for (const auto& e : t.entries) out << "  " << spelling(e) << " -> " << e.backend << "\n";
    if (t.no_sni_backend) out << "  (no name) -> " << *t.no_sni_backend << "\n";
    out << "  (default) -> " << (t.default_backend ? *t.default_backend : "none: refused") << "\n";
  }
  for (const auto& [name, b] : c.backends) {
    out << "backend " << name << ": proxy_protocol " << to_string(b.proxy_protocol)
        << ", connect_timeout " << b.connect_timeout.count() << "ms, max_tries " << b.max_tries;
    if (b.forward_port) {
      out << ", forward to the SNI name on port " << *b.forward_port << ", allow "
          << join(b.allow) << (b.allow_private ? ", private allowed" : "") << "\n";
      continue;
    }
    out << "\n";
    for (const auto& s : b.servers) out << "  server " << s.text << "\n";
  }
  return out.str();
}

}  // namespace snigate::config
