#pragma once
// `[remote_ban]`: the edge's TCP listener for bans from snigate-watch on backend hosts. Off
// unless the section sets `listen`:
//   [remote_ban]
//   listen = "0.0.0.0:7443"          # or "[::]:7443"
//   token_files = ["/etc/snigate/remote.token"]   # mode 0600, 16+ characters each
//   tokens = []                      # inline secrets, same rules (prefer token_files)
//   name = "edge-a"                  # what requests must be signed for (snigate-watch's [edge] name)
//   allow = ["192.0.2.0/24"]         # peers allowed to connect (default: any)
//   rate = 20                        # requests per second per peer address (a request carries
//   burst = 100                      #   one ban, an unban, or a batch of up to 500 bans)
//   ban_rate = 500                   # bans per second per peer address, whatever the batching
//   ban_burst = 10000
//   max_skew = "30s"                 # request timestamps this far off the edge's clock
//   min_prefix_v4 = 16               # the widest prefixes a remote ban may cover
//   min_prefix_v6 = 48
//   tls_cert = "/etc/snigate/edge.pem"      # TLS, all three or none: the edge's certificate,
//   tls_key = "/etc/snigate/edge.key"       #   its key, and the CA that signs the watchers'
//   tls_client_ca = "/etc/snigate/watchers-ca.pem"   #   certificates (each must show one)
//   enabled = true
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <toml++/toml.h>

#include "control/remote_tls.h"
#include "net/prefix.h"

namespace snigate::control {

struct RemoteBanConfig {
  bool enabled = false;
  boost::asio::ip::tcp::endpoint listen;
  std::vector<std::string> tokens;      // inline ones and the token files' contents
  std::vector<std::string> token_names;  // for the log: "token_files[0] (/etc/...)", "tokens[1]"
  std::string name;                     // "": requests name no edge (and v1 ones are taken)
  std::vector<net::Prefix> allow;       // empty: any peer
  // Two buckets per peer: requests (each costs a MAC check and a log line) and bans (each a
  // map entry and a store row). A burst of 10,000 offenders goes in at once; past it a peer
  // gets ban_rate, so a stolen token needs minutes, not seconds, to fill the ban map. The
  // request burst takes 10,000 bans of up to ~1.5 KiB each on the wire (~130 per request).
  double rate = 20;
  double burst = 100;
  double ban_rate = 500;
  double ban_burst = 10000;
  std::chrono::seconds max_skew{30};
  std::chrono::seconds idle_timeout{30};
  std::size_t max_connections = 64;
  // A stolen token must not ban half the Internet: wider remote bans are refused (the edge's
  // operator can still make them with snigatectl).
  unsigned min_prefix_v4 = 16;
  unsigned min_prefix_v6 = 48;
  RemoteTlsFiles tls;  // ca: tls_client_ca
  // Not read from the section: the daemon puts it beside the ban store. Where the newest
  // accepted request's timestamp is kept across restarts (RemoteAuth::remember_in); "": not.
  std::string replay_file;
};

// Reads [remote_ban] from the config document (config::Config::raw) and the token files it
// names. Throws config::ConfigError "FILE:LINE:COL: ..." (a missing or world-readable token
// file included).
RemoteBanConfig parse_remote_ban_config(const toml::table& root);

}  // namespace snigate::control
