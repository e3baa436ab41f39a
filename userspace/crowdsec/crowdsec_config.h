#pragma once
// The [crowdsec] section: snigated as a bouncer of a CrowdSec Local API.
//
//   [crowdsec]
//   lapi_url = "http://127.0.0.1:8080/"
//   api_key_file = "/etc/snigate/crowdsec-bouncer.key"   # cscli bouncers add snigate
//   poll_interval = "10s"
//   resync_interval = "5m"  # a full pull instead of a delta, at most this far apart
//   scopes = ["Ip", "Range"]
//   origins = []        # all
//   scenarios = []      # all; else a decision's scenario must contain one of these
//   # As a source of decisions (cscli machines add snigate-edge-a --password ...):
//   machine_id = "snigate-edge-a"
//   machine_password_file = "/etc/snigate/crowdsec-machine.pass"
//   push = ["jails"]    # and "ctl" for snigatectl's bans
#include <chrono>
#include <string>

#include <toml++/toml.h>

#include "crowdsec/decision.h"

namespace snigate::crowdsec {

struct LapiUrl {
  std::string host;  // a name or an address, without brackets
  std::string port;
  std::string base;  // path prefix without the trailing '/': "" or "/crowdsec"
  std::string text;  // as configured, for log lines
};

// "http://HOST[:PORT][/PATH]"; nullopt with `error` set otherwise (https is not spoken yet).
std::optional<LapiUrl> parse_lapi_url(std::string_view text, std::string& error);

struct CrowdsecConfig {
  bool enabled = false;  // a [crowdsec] section with lapi_url
  LapiUrl lapi;
  std::string api_key;   // read from api_key_file; empty: no bouncer
  std::chrono::milliseconds poll_interval{std::chrono::seconds(10)};
  // A delta misses a decision created while a pull ran: LAPI (1.4, Debian 12's) sends the
  // decisions created after the bouncer's last pull, and records that pull's time when it
  // has answered, after its query. A full pull (startup=true) this often catches those.
  std::chrono::milliseconds resync_interval{std::chrono::minutes(5)};
  DecisionFilter filter;
  std::string machine_id;        // empty: not a source
  std::string machine_password;  // read from machine_password_file
  bool push_jails = true;
  bool push_ctl = false;
};

// Absent section: enabled = false. Throws config::ConfigError ("FILE:LINE:COL: ...") on
// unknown keys, a bad URL, an unreadable or world-readable key or password file, unknown
// scopes, neither api_key_file nor machine_id.
CrowdsecConfig parse_crowdsec_config(const toml::table& root);

}  // namespace snigate::crowdsec
