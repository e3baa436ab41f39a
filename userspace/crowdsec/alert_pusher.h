#pragma once
// snigated as a CrowdSec source: bans made by its jails (and, if configured, by snigatectl)
// go to the Local API as alerts with their decision (alert.h), logged in as a machine
// (POST /v1/watchers/login for a JWT, then POST /v1/alerts). On its own thread: push()
// never waits for LAPI. While LAPI is down the alerts queue, at most kQueueLimit (the oldest
// go first, counted in one log line), and drain when it answers again.
//
// Only bans the daemon made itself come here: the bouncer's bans (BanManager::apply_owned)
// have no path to push(), so a decision from LAPI never goes back to it.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bans/ban.h"
#include "crowdsec/lapi_http.h"

namespace snigate::crowdsec {

class AlertPusher {
 public:
  static constexpr std::size_t kQueueLimit = 10'000;
  static constexpr std::size_t kBatch = 100;  // alerts per POST
  static constexpr std::chrono::seconds kMaxBackoff{60};

  AlertPusher(LapiUrl url, std::string machine_id, std::string password);
  ~AlertPusher();  // stops within about 100 ms; what is still queued is dropped
  AlertPusher(const AlertPusher&) = delete;
  AlertPusher& operator=(const AlertPusher&) = delete;

  void push(const bans::BanEntry& entry);

 private:
  void loop();
  // Sends `batch`; "" on success, else what went wrong.
  std::string send(const std::vector<bans::BanEntry>& batch);
  std::string login();

  LapiHttp http_;
  std::string machine_id_, password_;
  std::string token_;  // the JWT; empty until logged in, cleared on 401

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::uint64_t, bans::BanEntry>> queue_;  // numbered as pushed
  std::uint64_t next_number_ = 0;
  std::size_t dropped_ = 0;  // since LAPI last took alerts
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace snigate::crowdsec
