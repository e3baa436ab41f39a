#pragma once
// Client side of the control socket (protocol: control/protocol.h), for snigatectl and tests.
#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace snigate::control {

class ControlClient {
 public:
  explicit ControlClient(std::string path,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // Sends one request and waits for its reply (one connection per call). Returns nullopt and
  // sets `error` when the daemon cannot be reached ("cannot reach snigated at PATH: ... (is it
  // running? --socket?)"), times out or answers something that is not a JSON object. A reply
  // with "ok": false is returned as is.
  std::optional<nlohmann::json> request(const nlohmann::json& req, std::string& error) const;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::chrono::milliseconds timeout_;
};

}  // namespace snigate::control
