#pragma once
// `[remote_ban]`: the edge's TCP listener for bans from snigate-watch on backend hosts. Off
// unless the section sets `listen`:
//   [remote_ban]
//   listen = "0.0.0.0:7443"          # or "[::]:7443"
//   token_files = ["/etc/snigate/remote.token"]   # mode 0600, 16+ characters each
//   tokens = []                      # inline secrets, same rules (prefer token_files)
//   allow = ["192.0.2.0/24"]         # peers allowed to connect (default: any)
//   rate = 5                         # requests per second per peer address
//   burst = 20
//   max_skew = "30s"                 # request timestamps this far off the edge's clock
//   min_prefix_v4 = 16               # the widest prefixes a remote ban may cover
//   min_prefix_v6 = 48
//   enabled = true
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <toml++/toml.h>

#include "net/prefix.h"

namespace snigate::control {

struct RemoteBanConfig {
  bool enabled = false;
  boost::asio::ip::tcp::endpoint listen;
  std::vector<std::string> tokens;      // inline ones and the token files' contents
  std::vector<std::string> token_names;  // for the log: "token_files[0] (/etc/...)", "tokens[1]"
  std::vector<net::Prefix> allow;       // empty: any peer
  double rate = 5;
  double burst = 20;
  std::chrono::seconds max_skew{30};
  std::chrono::seconds idle_timeout{30};
  std::size_t max_connections = 64;
  // A stolen token must not ban half the Internet: wider remote bans are refused (the edge's
  // operator can still make them with snigatectl).
  unsigned min_prefix_v4 = 16;
  unsigned min_prefix_v6 = 48;
};

// Reads [remote_ban] from the config document (config::Config::raw) and the token files it
// names. Throws config::ConfigError "FILE:LINE:COL: ..." (a missing or world-readable token
// file included).
RemoteBanConfig parse_remote_ban_config(const toml::table& root);

}  // namespace snigate::control
