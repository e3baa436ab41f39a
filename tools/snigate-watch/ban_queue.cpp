#include "ban_queue.h"

#include <random>

#include <spdlog/spdlog.h>

#include "control/remote_protocol.h"

namespace snigate::watch_tool {

using Status = control::RemoteReply::Status;

BanQueue::BanQueue(BanQueueOptions options, Send send)
    : options_(std::move(options)), send_(std::move(send)) {
  if (!options_.file.empty()) {
    std::size_t bad = 0;
    std::string error;
    journal_ = QueueJournal::open(options_.file, state_, bad, error);
    if (!error.empty()) spdlog::error("ban queue: {}; bans are kept in memory until it can", error);
    if (bad) spdlog::warn("ban queue {}: skipped {} unreadable line(s)", options_.file, bad);
    if (!state_.pending.empty())
      spdlog::info("ban queue {}: {} ban(s) still to send", options_.file, state_.pending.size());
    if (!state_.held.empty())
      spdlog::warn("ban queue {}: {} ban(s) held since the edge refused them ({}); they are sent "
                   "again once it accepts a ban", options_.file, state_.held.size(), state_.held_reason);
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

bool BanQueue::push(const bans::BanRequest& request) {
  bool stored = true;
  {
    std::lock_guard lock(mu_);
    state_.pending.push_back(request);
    // One id per ban, written to the file with it: every retry (and a restart's resend)
    // carries the same id, so the edge counts one offence however often it is delivered.
    if (state_.pending.back().id.empty()) state_.pending.back().id = control::random_nonce();
    if (journal_) stored = journal_->queued(state_.pending.back());
  }
  if (!stored) spdlog::error("ban queue {}: cannot write; ban of {} kept in memory", options_.file, request.prefix.str());
  cv_.notify_all();
  return stored;
}

std::size_t BanQueue::pending() const {
  std::lock_guard lock(mu_);
  return state_.pending.size();
}

std::size_t BanQueue::held() const {
  std::lock_guard lock(mu_);
  return state_.held.size();
}

std::string BanQueue::held_reason() const {
  std::lock_guard lock(mu_);
  return state_.held.empty() ? std::string() : state_.held_reason;
}

bool BanQueue::drain(std::chrono::milliseconds limit) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, limit, [&] { return state_.pending.empty(); });
}

// The edge takes our bans again: the held ones go next (after the first `after` pending,
// the batch being settled), oldest first, ids unchanged.
void BanQueue::release_held_locked(std::size_t after) {
  if (state_.held.empty()) return;
  spdlog::info("edge accepts bans again: sending the {} held one(s)", state_.held.size());
  for (const auto& r : state_.held)
    if (journal_) journal_->release(r.id);
  state_.pending.insert(state_.pending.begin() + static_cast<long>(after), state_.held.begin(),
                        state_.held.end());
  state_.held.clear();
}

BanQueue::Settled BanQueue::settle_locked(std::size_t count,
                                          const std::vector<control::RemoteReply>& replies) {
  Settled out;
  std::vector<bans::BanRequest> retry;
  std::size_t accepted = 0;
  std::string first;
  // Bans held before this batch go again if it got one accepted; those it holds wait for
  // the next acceptance.
  for (std::size_t i = 0; i < count && i < replies.size(); ++i)
    if (replies[i].ok()) {
      release_held_locked(count);
      break;
    }
  for (std::size_t i = 0; i < count; ++i) {
    auto& request = state_.pending[i];
    // A sender that answered fewer bans than it was given: the rest are retried.
    const control::RemoteReply reply =
        i < replies.size() ? replies[i] : control::RemoteReply{Status::Retry, "no answer for this ban"};
    if (reply.status == Status::Retry) {
      if (retry.empty()) out.retry_reason = reply.message;
      retry.push_back(std::move(request));
      continue;
    }
    out.progress = true;
    if (reply.ok()) {
      if (!accepted++) first = request.prefix.str() + " (jail " + request.jail + ")";
      spdlog::debug("edge banned {} (jail {})", request.prefix.str(), request.jail);
      if (journal_) journal_->done(request.id);
    } else if (reply.channel) {
      spdlog::error("edge refused ban of {}: {}; held ({} in all) until the edge accepts a ban "
                    "from this host again", request.prefix.str(), reply.message, state_.held.size() + 1);
      if (journal_) journal_->hold(request.id, reply.message);
      state_.held.push_back(std::move(request));
      state_.held_reason = reply.message;
      if (state_.held.size() > options_.max_held) {
        spdlog::error("ban queue: more than {} held bans; dropping the oldest ({})",
                      options_.max_held, state_.held.front().prefix.str());
        if (journal_) journal_->done(state_.held.front().id);
        state_.held.pop_front();
      }
    } else {
      spdlog::error("edge refused ban of {}: {}", request.prefix.str(), reply.message);
      if (journal_) journal_->done(request.id);
    }
  }
  state_.pending.erase(state_.pending.begin(), state_.pending.begin() + static_cast<long>(count));
  state_.pending.insert(state_.pending.begin(), retry.begin(), retry.end());
  out.retried = retry.size();
  if (accepted) spdlog::info("edge banned {} of {} sent, first {}", accepted, count, first);
  return out;
}

void BanQueue::run() {
  std::mt19937 rng(std::random_device{}());
  auto backoff = options_.backoff_min;
  std::unique_lock lock(mu_);
  for (;;) {
    // Idle with bans held: every backoff_max, one of them probes whether the edge takes our
    // bans again (a token or clock fixed while no new ban came).
    while (!stopping_ && state_.pending.empty()) {
      if (state_.held.empty()) {
        cv_.wait(lock, [&] { return stopping_ || !state_.pending.empty() || !state_.held.empty(); });
      } else if (!cv_.wait_for(lock, options_.backoff_max,
                               [&] { return stopping_ || !state_.pending.empty(); })) {
        if (journal_) journal_->release(state_.held.front().id);
        state_.pending.push_back(state_.held.front());
        state_.held.pop_front();
      }
    }
    if (stopping_) return;
    const std::size_t count = std::min(state_.pending.size(), options_.max_batch);
    std::vector<bans::BanRequest> batch(state_.pending.begin(),
                                        state_.pending.begin() + static_cast<long>(count));
    lock.unlock();
    // One fdatasync for all that was pushed since the last batch (group commit): the pushes
    // themselves only write(2), which a crash of this process cannot lose.
    if (journal_) journal_->sync();
    auto replies = send_(batch);  // blocking, bounded by the client's timeout
    lock.lock();
    // Only this thread takes bans off the front, so the batch is still the first `count`.
    const auto settled = settle_locked(count, replies);
    if (journal_ && !journal_->maybe_compact(state_))
      spdlog::error("ban queue {}: cannot rewrite; it grows until it can", options_.file);
    cv_.notify_all();
    if (!settled.retried) {
      backoff = options_.backoff_min;
      continue;
    }
    // Some progress (a batch cut by the edge's ban rate): come back after the shortest wait.
    if (settled.progress) backoff = options_.backoff_min;
    spdlog::warn("edge could not take {} ban(s) for now ({}); retrying in {} ms", settled.retried,
                 settled.retry_reason, backoff.count());
    // Jitter, so many backends do not all come back at the same instant.
    std::uniform_int_distribution<long> jitter(0, backoff.count() / 4);
    auto wait = backoff + std::chrono::milliseconds(jitter(rng));
    backoff = std::min(backoff * 2, options_.backoff_max);
    if (cv_.wait_for(lock, wait, [&] { return stopping_; })) return;
  }
}

}  // namespace snigate::watch_tool
