#include "control/remote_config.h"

#include "config/diag.h"
#include "config/endpoint.h"
#include "control/remote_client.h"
#include "control/remote_protocol.h"

namespace snigate::control {

RemoteBanConfig parse_remote_ban_config(const toml::table& root) {
  RemoteBanConfig cfg;
  const auto* node = root.get("remote_ban");
  if (!node) return cfg;
  const auto* t = node->as_table();
  if (!t) config::fail(*node, "[remote_ban] must be a table");
  config::check_keys(*t, {"enabled", "listen", "name", "tokens", "token_files", "allow", "rate",
                          "burst", "ban_rate", "ban_burst",
                          "max_skew", "idle_timeout", "max_connections", "min_prefix_v4",
                          "min_prefix_v6", "tls_cert", "tls_key", "tls_client_ca"},
                     "remote_ban");
  if (!t->contains("listen")) {
    if (config::get_bool(*t, "enabled", false))
      throw config::ConfigError(t->source(), "[remote_ban] needs 'listen', such as \"0.0.0.0:7443\"");
    return cfg;
  }
  cfg.enabled = config::get_bool(*t, "enabled", true);
  std::string error;
  auto listen = config::parse_listen_address(config::get_string(*t, "listen", ""), &error);
  if (!listen) config::fail(*t->get("listen"), "[remote_ban] listen: " + error);
  cfg.listen = *listen;

  auto inline_tokens = config::get_string_list(*t, "tokens");
  for (std::size_t i = 0; i < inline_tokens.size(); ++i) {
    std::string token = inline_tokens[i];
    if (token.size() < kMinTokenLength)
      config::fail(*t->get("tokens"), "[remote_ban] tokens[" + std::to_string(i) + "] is shorter than " +
                                          std::to_string(kMinTokenLength) + " characters; use a long random "
                                          "secret (openssl rand -hex 32)");
    cfg.tokens.push_back(std::move(token));
    cfg.token_names.push_back("tokens[" + std::to_string(i) + "]");
  }
  auto files = config::get_string_list(*t, "token_files");
  for (std::size_t i = 0; i < files.size(); ++i) {
    auto token = read_token_file(files[i], error);
    if (!token) config::fail(*t->get("token_files"), "[remote_ban] token_files: " + error);
    cfg.tokens.push_back(std::move(*token));
    cfg.token_names.push_back("token_files[" + std::to_string(i) + "] (" + files[i] + ")");
  }
  if (cfg.enabled && cfg.tokens.empty())
    throw config::ConfigError(t->source(), "[remote_ban] needs 'token_files' or 'tokens': the "
                                           "channel accepts signed requests only");

  cfg.allow = config::get_prefix_list(*t, "allow", "[remote_ban] ");
  cfg.rate = static_cast<double>(config::get_int(*t, "rate", 20, 1, 100000));
  cfg.burst = static_cast<double>(config::get_int(*t, "burst", 100, 1, 1000000));
  cfg.ban_rate = static_cast<double>(config::get_int(*t, "ban_rate", 500, 1, 1000000));
  cfg.ban_burst = static_cast<double>(config::get_int(*t, "ban_burst", 10000, 1, 10000000));
  if (t->contains("name")) {
    cfg.name = config::get_string(*t, "name", "");
    if (auto why = check_edge_name(cfg.name); !why.empty())
      config::fail(*t->get("name"), "[remote_ban] name: " + why);
  }
  auto skew = config::get_duration(*t, "max_skew", cfg.max_skew);
  if (skew < std::chrono::seconds(1))
    config::fail(*t->get("max_skew"), "'max_skew' must be at least \"1s\"");
  cfg.max_skew = std::chrono::duration_cast<std::chrono::seconds>(skew);
  auto idle = config::get_duration(*t, "idle_timeout", cfg.idle_timeout);
  if (idle < std::chrono::seconds(1))
    config::fail(*t->get("idle_timeout"), "'idle_timeout' must be at least \"1s\"");
  cfg.idle_timeout = std::chrono::duration_cast<std::chrono::seconds>(idle);
  cfg.max_connections = static_cast<std::size_t>(config::get_int(*t, "max_connections", 64, 1, 100000));
  cfg.min_prefix_v4 = static_cast<unsigned>(config::get_int(*t, "min_prefix_v4", cfg.min_prefix_v4, 1, 32));
  cfg.min_prefix_v6 = static_cast<unsigned>(config::get_int(*t, "min_prefix_v6", cfg.min_prefix_v6, 1, 128));
  cfg.tls = {config::get_string(*t, "tls_cert", ""), config::get_string(*t, "tls_key", ""),
             config::get_string(*t, "tls_client_ca", "")};
  if (cfg.tls.cert.empty() != cfg.tls.key.empty() || cfg.tls.cert.empty() != cfg.tls.ca.empty())
    throw config::ConfigError(t->source(), "[remote_ban] TLS needs all of tls_cert, tls_key and "
                                           "tls_client_ca (the CA that signs the watchers' "
                                           "certificates), or none of them");
  return cfg;
}

}  // namespace snigate::control
