#include "crowdsec/alert_pusher.h"

#include <algorithm>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "crowdsec/alert.h"

namespace snigate::crowdsec {

AlertPusher::AlertPusher(LapiUrl url, std::string machine_id, std::string password)
    : http_(std::move(url), std::chrono::seconds(10)),
      machine_id_(std::move(machine_id)),
      password_(std::move(password)) {
  thread_ = std::thread([this] { loop(); });
}

AlertPusher::~AlertPusher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  http_.stop();
  cv_.notify_all();
  thread_.join();
}

void AlertPusher::push(const bans::BanEntry& entry) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kQueueLimit) {
      queue_.pop_front();
      if (dropped_++ == 0)
        spdlog::warn("crowdsec: {} alerts wait for {}; the oldest are dropped from here on "
                     "(their bans still hold here, only the other edges miss them)",
                     kQueueLimit, http_.url().text);
    }
    queue_.emplace_back(next_number_++, entry);
  }
  cv_.notify_all();
}

std::string AlertPusher::login() {
  nlohmann::json body{{"machine_id", machine_id_}, {"password", password_}, {"scenarios", nlohmann::json::array()}};
  auto reply = http_.post("/v1/watchers/login", {}, body.dump());
  if (!reply.error.empty()) return reply.error;
  if (!reply.ok())
    return http_.url().text + " refused the login of machine '" + machine_id_ + "' (HTTP " +
           std::to_string(reply.status) + "; is it in `cscli machines list`, with the password "
           "in machine_password_file?)";
  auto j = nlohmann::json::parse(reply.body, nullptr, false);
  if (!j.is_object() || !j.contains("token") || !j["token"].is_string())
    return http_.url().text + ": the login's answer holds no token";
  token_ = j["token"].get<std::string>();
  return {};
}

std::string AlertPusher::send(const std::vector<bans::BanEntry>& batch) {
  const auto now = bans::Clock::now();
  nlohmann::json alerts = nlohmann::json::array();
  for (const auto& entry : batch) alerts.push_back(alert_json(entry, now));
  const auto body = alerts.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // A JWT expires (an hour by default): one new login and one more try on 401.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (token_.empty())
      if (auto error = login(); !error.empty()) return error;
    auto reply = http_.post("/v1/alerts", {{"Authorization", "Bearer " + token_}}, body);
    if (!reply.error.empty()) return reply.error;
    if (reply.ok()) return {};
    if (reply.status != 401)
      return http_.url().text + " refused " + std::to_string(batch.size()) + " alert(s): HTTP " +
             std::to_string(reply.status) + " " + reply.body.substr(0, 200);
    token_.clear();
  }
  return http_.url().text + " refused the machine's token twice";
}

void AlertPusher::loop() {
  bool down = false;
  unsigned failures = 0;
  for (;;) {
    std::vector<bans::BanEntry> batch;
    std::uint64_t last = 0;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      for (std::size_t i = 0; i < std::min(queue_.size(), kBatch); ++i) {
        batch.push_back(queue_[i].second);
        last = queue_[i].first;
      }
    }
    auto error = send(batch);
    std::unique_lock lock(mu_);
    if (stopping_) return;
    if (error.empty()) {
      // What is left of the batch is at the front (push() drops from there past the limit).
      while (!queue_.empty() && queue_.front().first <= last) queue_.pop_front();
      if (down)
        spdlog::info("crowdsec: {} takes alerts again; {} queued, {} dropped while it did not",
                     http_.url().text, queue_.size(), dropped_);
      for (const auto& entry : batch)
        spdlog::debug("crowdsec: pushed {} ({})", entry.prefix.str(), entry.source);
      down = false;
      failures = 0;
      dropped_ = 0;
      continue;
    }
    if (!down)
      spdlog::warn("crowdsec: pushing alerts: {}; {} alert(s) queue (at most {}) and are "
                   "retried with back-off", error, queue_.size(), kQueueLimit);
    down = true;
    ++failures;
    auto delay = std::chrono::seconds(1);
    for (unsigned i = 0; i < failures && delay < kMaxBackoff; ++i) delay *= 2;
    delay = std::min(delay, kMaxBackoff);
    if (cv_.wait_for(lock, delay, [this] { return stopping_; })) return;
  }
}

}  // namespace snigate::crowdsec
