#include "crowdsec/crowdsec_config.h"

#include <algorithm>

#include "config/diag.h"
#include "config/secret_file.h"

namespace snigate::crowdsec {

std::optional<LapiUrl> parse_lapi_url(std::string_view text, std::string& error) {
  LapiUrl url;
  url.text = std::string(text);
  constexpr std::string_view kScheme = "http://";
  if (text.substr(0, kScheme.size()) != kScheme) {
    error = "'" + url.text + "' must start with http:// (such as \"http://127.0.0.1:8080/\"); "
            "put LAPI on loopback or a private network, or behind a TLS tunnel";
    return std::nullopt;
  }
  std::string_view rest = text.substr(kScheme.size());
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::string_view path = rest.substr(slash);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    url.base = std::string(path);
  }
  std::string_view port = "80";
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "'" + url.text + "': an IPv6 address needs its closing ']'";
      return std::nullopt;
    }
    url.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty()) {
      if (authority.front() != ':') {
        error = "'" + url.text + "': expected ':PORT' after the address";
        return std::nullopt;
      }
      port = authority.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (url.host.empty()) {
    error = "'" + url.text + "' names no host";
    return std::nullopt;
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(std::string(port)) == 0 || std::stoi(std::string(port)) > 65535) {
    error = "'" + url.text + "': the port must be a number from 1 to 65535";
    return std::nullopt;
  }
  url.port = std::string(port);
  return url;
}

CrowdsecConfig parse_crowdsec_config(const toml::table& root) {
  CrowdsecConfig cfg;
  const auto* node = root.get("crowdsec");
  if (!node) return cfg;
  const auto* t = node->as_table();
  if (!t) config::fail(*node, "[crowdsec] must be a table");
  config::check_keys(*t, {"enabled", "lapi_url", "api_key_file", "poll_interval",
                          "resync_interval", "scopes", "origins", "scenarios", "machine_id",
                          "machine_password_file", "push"},
                     "crowdsec");
  cfg.enabled = config::get_bool(*t, "enabled", true);
  if (!cfg.enabled) return cfg;
  const auto url_text = config::require_string(*t, "lapi_url", "crowdsec");
  std::string error;
  auto url = parse_lapi_url(url_text, error);
  if (!url) config::fail(*t->get("lapi_url"), "[crowdsec] lapi_url " + error);
  cfg.lapi = *url;
  if (!t->contains("api_key_file") && !t->contains("machine_id"))
    throw config::ConfigError(t->source(), "[crowdsec] needs 'api_key_file' (to take LAPI's "
                                           "decisions), 'machine_id' (to push the jails' bans), "
                                           "or both");
  if (t->contains("api_key_file")) {
    auto key = config::read_secret_file(config::get_string(*t, "api_key_file", ""), &error);
    if (!key)
      config::fail(*t->get("api_key_file"),
                   "[crowdsec] api_key_file: " + error + " (write the key `cscli bouncers add "
                   "snigate` prints into it, mode 600)");
    cfg.api_key = std::move(*key);
  }
  if (t->contains("machine_id")) {
    cfg.machine_id = config::get_string(*t, "machine_id", "");
    if (cfg.machine_id.empty()) config::fail(*t->get("machine_id"), "'machine_id' is empty");
    const auto file = config::require_string(*t, "machine_password_file", "crowdsec");
    auto password = config::read_secret_file(file, &error);
    if (!password)
      config::fail(*t->get("machine_password_file"),
                   "[crowdsec] machine_password_file: " + error + " (the password given to "
                   "`cscli machines add " + cfg.machine_id + " --password ...`, mode 600)");
    cfg.machine_password = std::move(*password);
    if (t->contains("push")) {
      cfg.push_jails = false;
      for (const auto& what : config::get_string_list(*t, "push")) {
        if (what == "jails") cfg.push_jails = true;
        else if (what == "ctl") cfg.push_ctl = true;
        else
          config::fail(*t->get("push"), "[crowdsec] push: '" + config::escaped(what) +
                                            "' is not a ban source; use \"jails\" and \"ctl\"");
      }
    }
  } else if (t->contains("push") || t->contains("machine_password_file")) {
    throw config::ConfigError(t->source(), "[crowdsec] push and machine_password_file need "
                                           "'machine_id' (cscli machines add NAME)");
  }
  cfg.poll_interval = config::get_duration(*t, "poll_interval", cfg.poll_interval);
  if (cfg.poll_interval < std::chrono::milliseconds(100))
    config::fail(*t->get("poll_interval"), "'poll_interval' must be at least \"100ms\", such as \"10s\"");
  cfg.resync_interval = config::get_duration(*t, "resync_interval",
                                             std::max(cfg.resync_interval, cfg.poll_interval));
  if (cfg.resync_interval < cfg.poll_interval)
    config::fail(*t->get("resync_interval"),
                 "'resync_interval' must be at least 'poll_interval', such as \"5m\"");
  if (t->contains("scopes")) {
    cfg.filter.scopes = config::get_string_list(*t, "scopes");
    for (auto& scope : cfg.filter.scopes) {
      std::string lower = scope;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (lower != "ip" && lower != "range")
        config::fail(*t->get("scopes"), "[crowdsec] scopes: '" + config::escaped(scope) +
                                            "' is not one snigate can enforce; use \"Ip\" and "
                                            "\"Range\"");
    }
    if (cfg.filter.scopes.empty())
      config::fail(*t->get("scopes"), "[crowdsec] scopes is empty, so no decision would be "
                                      "taken; use [\"Ip\", \"Range\"] or enabled = false");
  }
  cfg.filter.origins = config::get_string_list(*t, "origins");
  cfg.filter.scenarios = config::get_string_list(*t, "scenarios");
  return cfg;
}

}  // namespace snigate::crowdsec
