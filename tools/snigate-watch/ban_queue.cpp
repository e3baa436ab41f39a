#include "ban_queue.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "control/remote_protocol.h"

namespace snigate::watch_tool {

using json = nlohmann::json;

std::string to_json_line(const bans::BanRequest& r) {
  json j;
  j["prefix"] = r.prefix.str();
  if (r.duration) j["duration_s"] = r.duration->count();
  j["reason"] = r.reason;
  j["source"] = r.source;
  j["jail"] = r.jail;
  if (r.matched_at)
    j["matched_at_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                             r.matched_at->time_since_epoch())
                             .count();
  j["sample"] = r.sample;
  if (!r.id.empty()) j["id"] = r.id;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

std::optional<bans::BanRequest> from_json_object(const json& j) {
  if (j.is_discarded() || !j.is_object() || !j.contains("prefix")) return std::nullopt;
  auto prefix = net::Prefix::parse(j.value("prefix", ""));
  if (!prefix) return std::nullopt;
  bans::BanRequest r;
  r.prefix = *prefix;
  if (j.contains("duration_s")) r.duration = std::chrono::seconds(j["duration_s"].get<std::int64_t>());
  r.reason = j.value("reason", "");
  r.source = j.value("source", "");
  r.jail = j.value("jail", "");
  if (j.contains("matched_at_ms"))
    r.matched_at = bans::Clock::time_point(
        std::chrono::milliseconds(j["matched_at_ms"].get<std::int64_t>()));
  r.sample = j.value("sample", "");
  r.id = j.value("id", "");
  return r;
}

}  // namespace

std::optional<bans::BanRequest> from_json_line(const std::string& line) {
  // A line of the wrong shape (a key of another type) is unreadable, like one that is not JSON.
  try {
    return from_json_object(json::parse(line, nullptr, false));
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

BanQueue::BanQueue(BanQueueOptions options, Send send)
    : options_(std::move(options)), send_(std::move(send)) {
  if (!options_.file.empty()) {
    std::ifstream in(options_.file);
    std::size_t bad = 0;
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      auto r = from_json_line(line);
      if (!r) {
        ++bad;
        continue;
      }
      auto j = json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("held") && j["held"].is_string()) {
        held_reason_ = j["held"].get<std::string>();
        held_.push_back(std::move(*r));
      } else {
        queue_.push_back(std::move(*r));
      }
    }
    if (bad) spdlog::warn("ban queue {}: skipped {} unreadable line(s)", options_.file, bad);
    if (!queue_.empty()) spdlog::info("ban queue {}: {} ban(s) still to send", options_.file, queue_.size());
    if (!held_.empty())
      spdlog::warn("ban queue {}: {} ban(s) held since the edge refused them ({}); they are sent "
                   "again once it accepts a ban", options_.file, held_.size(), held_reason_);
  }
  sender_ = std::thread([this] { run(); });
}

BanQueue::~BanQueue() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  sender_.join();
}

bool BanQueue::persist_locked() {
  if (options_.file.empty()) return true;
  std::string tmp = options_.file + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::string data;
  for (const auto& r : queue_) data += to_json_line(r) + "\n";
  for (const auto& r : held_) {
    auto j = json::parse(to_json_line(r));
    j["held"] = held_reason_;
    data += j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  // Renamed over the old file only once complete: a crash leaves one whole version.
  return ok && std::rename(tmp.c_str(), options_.file.c_str()) == 0;
}

bool BanQueue::push(const bans::BanRequest& request) {
  bool stored;
  {
    std::lock_guard lock(mu_);
    queue_.push_back(request);
    // One id per ban, written to the file with it: every retry (and a restart's resend)
    // carries the same id, so the edge counts one offence however often it is delivered.
    if (queue_.back().id.empty()) queue_.back().id = control::random_nonce();
    stored = persist_locked();
  }
  if (!stored) spdlog::error("ban queue {}: cannot write; ban of {} kept in memory", options_.file, request.prefix.str());
  cv_.notify_all();
  return stored;
}

std::size_t BanQueue::pending() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

std::size_t BanQueue::held() const {
  std::lock_guard lock(mu_);
  return held_.size();
}

std::string BanQueue::held_reason() const {
  std::lock_guard lock(mu_);
  return held_.empty() ? std::string() : held_reason_;
}

bool BanQueue::drain(std::chrono::milliseconds limit) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, limit, [&] { return queue_.empty(); });
}

void BanQueue::run() {
  std::mt19937 rng(std::random_device{}());
  auto backoff = options_.backoff_min;
  std::unique_lock lock(mu_);
  for (;;) {
    // Idle with bans held: every backoff_max, one of them probes whether the edge takes our
    // bans again (a token or clock fixed while no new ban came).
    while (!stopping_ && queue_.empty()) {
      if (held_.empty()) {
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !held_.empty(); });
      } else if (!cv_.wait_for(lock, options_.backoff_max,
                               [&] { return stopping_ || !queue_.empty(); })) {
        queue_.push_back(held_.front());
        held_.pop_front();
      }
    }
    if (stopping_) return;
    bans::BanRequest request = queue_.front();
    lock.unlock();
    auto reply = send_(request);  // blocking, bounded by the client's timeout
    lock.lock();
    if (reply.status == control::RemoteReply::Status::Retry) {
      spdlog::warn("edge unreachable for ban of {} ({}); retrying in {} ms",
                   request.prefix.str(), reply.message, backoff.count());
      // Jitter, so many backends do not all come back at the same instant.
      std::uniform_int_distribution<long> jitter(0, backoff.count() / 4);
      auto wait = backoff + std::chrono::milliseconds(jitter(rng));
      backoff = std::min(backoff * 2, options_.backoff_max);
      if (cv_.wait_for(lock, wait, [&] { return stopping_; })) return;
      continue;
    }
    backoff = options_.backoff_min;
    if (!queue_.empty()) queue_.pop_front();
    if (reply.ok()) {
      spdlog::info("edge banned {} (jail {})", request.prefix.str(), request.jail);
      // The edge takes our bans again: the held ones go next, oldest first, ids unchanged.
      if (!held_.empty()) {
        spdlog::info("edge accepts bans again: sending the {} held one(s)", held_.size());
        queue_.insert(queue_.begin(), held_.begin(), held_.end());
        held_.clear();
      }
    } else if (reply.channel) {
      spdlog::error("edge refused ban of {}: {}; held ({} in all) until the edge accepts a ban "
                    "from this host again", request.prefix.str(), reply.message, held_.size() + 1);
      held_.push_back(request);
      held_reason_ = reply.message;
      if (held_.size() > options_.max_held) {
        spdlog::error("ban queue: more than {} held bans; dropping the oldest ({})",
                      options_.max_held, held_.front().prefix.str());
        held_.pop_front();
      }
    } else {
      spdlog::error("edge refused ban of {}: {}", request.prefix.str(), reply.message);
    }
    if (!persist_locked()) spdlog::error("ban queue {}: cannot write", options_.file);
    cv_.notify_all();
  }
}

}  // namespace snigate::watch_tool
