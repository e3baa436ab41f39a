#pragma once
// The daemon's configuration: the TOML file (or the embedded demo) parsed and cross-checked
// into plain structs. Sections other areas own (bans, remote_ban, jail, resolver) are kept in
// `raw` unparsed; each area reads its own with the helpers in config/diag.h.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <toml++/toml.h>

#include "config/diag.h"
#include "net/prefix.h"
#include "relay/mode.h"
#include "snigate/bpf/relay_abi.h"

namespace snigate::config {

// quic: UDP, routed on the ClientHello inside the client's Initial packets (userspace/quic/).
enum class Protocol { Tls, Http, Connect, Quic };
enum class ProxyProtocol { Off, V1, V2 };
const char* to_string(Protocol protocol);
const char* to_string(ProxyProtocol proxy_protocol);

// A quic listener's flows (one per client address:port). The hello's time and bytes are the
// listener's preread_timeout and preread_max, as on TCP.
struct QuicLimits {
  std::size_t max_flows = 4096;                       // per listener; new ones refused beyond
  std::chrono::milliseconds flow_idle_timeout{30000};  // no datagram either way: the flow ends
  std::size_t preread_datagrams = 16;                 // held before the route is known
};

struct ListenerConfig {
  std::string name;                            // `name` key, else "HOST:PORT"
  boost::asio::ip::tcp::endpoint listen;       // "127.0.0.1:9446" or "[::1]:9446"; UDP for quic
  Protocol protocol = Protocol::Tls;
  std::string table;                           // required for tls/http; names a [table.X]
  bool proxy_protocol_in = false;
  std::vector<net::Prefix> trusted_proxies;    // non-empty when proxy_protocol_in
  std::chrono::milliseconds preread_timeout{5000};
  std::size_t preread_max = 16384;
  // TCP_DEFER_ACCEPT: the kernel hands over a connection once its first bytes are in (or after
  // ~1 s of silence), so accept and the first read are one wake-up; no tls/http/connect listener
  // can route before the client speaks.
  bool defer_accept = true;
  std::vector<std::string> allow;              // connect listeners: allow-list (forward area parses)
  bool allow_private = false;
  std::string auth;                            // connect listeners: "" | "basic:USER:PASS" | "token:SECRET"
  std::vector<net::Prefix> clients;            // connect listeners: who may use it; empty: anyone
  QuicLimits quic;                             // quic listeners only
};

struct ServerConfig {
  std::string host;                            // address literal or hostname (resolved at connect)
  std::uint16_t port = 0;
  unsigned weight = 1;
  bool backup = false;
  unsigned max_fails = 1;                      // 0: never marked down
  std::chrono::milliseconds fail_timeout{10000};
  // source=ADDR: the local address connects leave from (HAProxy's `source`, nginx's
  // proxy_bind). Each source address has its own ephemeral ports towards the server, so the
  // same server listed with several sources holds that many times more connections.
  std::optional<boost::asio::ip::address> source;
  std::string text;                            // as written in the file
};

struct BackendConfig {
  std::string name;
  std::vector<ServerConfig> servers;           // "192.168.99.13:443 weight=2 backup max_fails=3 fail_timeout=30s"
  ProxyProtocol proxy_protocol = ProxyProtocol::Off;
  std::chrono::milliseconds connect_timeout{5000};
  unsigned max_tries = 3;                      // servers tried per connection
  std::optional<std::uint16_t> forward_port;   // `forward = 443`: connect to the SNI name itself
  std::vector<std::string> allow;              // allow-list for forward backends
  bool allow_private = false;
};

struct RouteEntry {
  enum class Kind { Exact, Wildcard, Regex } kind;
  std::string pattern;                         // exact/wildcard lower-cased, no trailing dot; regex without '~'
  std::string backend;
  toml::source_region where;
};

// [[table.X.rule]]: a route on more than the name. Every condition it has must hold; rules
// are tried in file order before the table's name entries (routing/route_table.h).
struct RouteRule {
  std::optional<RouteEntry> name;              // `name`: exact, "*.wildcard" or "~regex"
  std::vector<std::string> alpn;               // `alpn`: the client offers any of these
  std::vector<net::Prefix> client;             // `client`: the real client is in any of these
  std::string backend;
  toml::source_region where;
};

// How the file writes a name entry: "example.org", "*.example.org", "~regex".
std::string spelling(const RouteEntry& entry);
// A rule's conditions in words: "name *.example.org, alpn acme-tls/1, client 10.0.0.0/8".
std::string describe(const RouteRule& rule);

struct TableConfig {
  std::string name;
  std::vector<RouteEntry> entries;             // file order
  std::vector<RouteRule> rules;                // file order
  std::optional<std::string> default_backend;
  std::optional<std::string> no_sni_backend;
};

enum class AccessLogFormat { Text, Json };  // key=value words, or one JSON object per line

struct DaemonConfig {
  unsigned workers = 0;                        // 0: one per core
  relay::Mode relay = relay::Mode::Auto;
  std::uint64_t sockmap_queue_limit = SNIGATE_RELAY_QUEUE_LIMIT_DEFAULT;  // per direction, bytes
  // Bytes either direction moves by copy before relay = sockmap hands the connection to the
  // kernel (relay_sockmap/sockmap_relay.h, step 0); 0 at once.
  std::uint64_t sockmap_handoff_after = 64 * 1024;
  std::string control_socket = "/run/snigate/control.sock";
  std::string access_log = "stdout";
  AccessLogFormat access_log_format = AccessLogFormat::Text;
  std::string log_level = "info";
  // Started as root, snigated runs as this user once it has bound and loaded what needs root
  // (daemon/privileges.h); empty: it keeps the rights it was started with. group: the
  // user's primary one when empty.
  std::string user;
  std::string group;
  // Unset: what RLIMIT_NOFILE affords under the running relay, at most
  // kDefaultMaxConnections (daemon/fd_budget.h); set, it is still capped by what the limit
  // affords.
  static constexpr std::size_t kDefaultMaxConnections = 65536;
  std::optional<std::size_t> max_connections;
  // Pipes the splice relay may hold at once (HAProxy's maxpipes): a burst that finds none free
  // goes by copy. Unset: a quarter of max_connections (daemon/fd_budget.h); 0: every burst
  // by copy.
  std::optional<std::size_t> max_pipes;
  // Per client (an IPv4 address, an IPv6 /64; behind PROXY in, the address in the header).
  // 0 turns a cap off.
  std::size_t max_connections_per_client = 512;
  std::size_t max_prereads_per_client = 32;    // connections not yet past their preread
  std::chrono::milliseconds drain_timeout{30000};
  std::chrono::milliseconds idle_timeout{600000};
  // Interfaces the datagrams of quic listeners' flows arrive on (the listeners' and the
  // backends'; "lo" for local ones): the kernel path forwards routed flows there. Empty:
  // userspace forwards every flow. Read at start.
  std::vector<std::string> quic_kernel_interfaces;
};

struct Config {
  std::string source;                          // file path or "<embedded default>"
  DaemonConfig daemon;
  std::vector<ListenerConfig> listeners;
  std::map<std::string, TableConfig> tables;
  std::map<std::string, BackendConfig> backends;
  toml::table raw;                             // whole document, for the sections other areas parse
};

// Both throw ConfigError whose what() reads "FILE:LINE:COL: what is wrong and what to do".
Config load_file(const std::string& path);
Config load_string(std::string_view text, std::string_view source_name);

// The demo configuration: tls on 127.0.0.1:9443 and http on 127.0.0.1:9080, everything to
// 127.0.0.1:8443, no PROXY header, control socket and ban store under /tmp (runs without root).
std::string_view embedded_default();

// What `snigated --check -c FILE` prints after a successful load: listeners, tables with their
// routes, backends with their servers. Multi-line, ends with a newline.
std::string check_summary(const Config& config);

}  // namespace snigate::config
