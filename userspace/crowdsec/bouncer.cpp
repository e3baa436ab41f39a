#include "crowdsec/bouncer.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace snigate::crowdsec {
namespace {

// LAPI's stream sends Ip decisions only unless asked for more (scopes=ip,range).
std::string scopes_query(const DecisionFilter& filter) {
  std::string out;
  for (const auto& scope : filter.scopes) {
    std::string lower = scope;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out += (out.empty() ? "" : ",") + lower;
  }
  return out;
}

}  // namespace

Bouncer::Bouncer(CrowdsecConfig cfg, bans::BanManager& bans)
    : cfg_(std::move(cfg)),
      bans_(bans),
      http_(cfg_.lapi, kTimeout),
      book_(cfg_.filter),
      target_("/v1/decisions/stream?scopes=" + scopes_query(cfg_.filter)),
      startup_target_(target_ + "&startup=true") {
  thread_ = std::thread([this] { loop(); });
}

Bouncer::~Bouncer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  http_.stop();
  cv_.notify_all();
  thread_.join();
}

bool Bouncer::wait(std::chrono::milliseconds delay) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, delay, [this] { return stopping_; });
}

std::string Bouncer::pull(Pull kind) {
  const bool startup = kind != Pull::Delta;
  auto reply = http_.get(startup ? startup_target_ : target_, {{"X-Api-Key", cfg_.api_key}});
  if (!reply.error.empty()) return reply.error;
  if (!reply.ok()) {
    std::string said = reply.body.substr(0, 200);
    std::replace_if(said.begin(), said.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
    return cfg_.lapi.text + " answered HTTP " + std::to_string(reply.status) +
           (reply.status == 403 ? " (is api_key_file's key one `cscli bouncers list` shows?)" : "") +
           (said.empty() ? "" : ": " + said);
  }
  std::string error;
  auto body = parse_stream(reply.body, error);
  if (!body) return cfg_.lapi.text + ": " + error;
  if (body->malformed)
    spdlog::warn("crowdsec: {} decision(s) from {} had no id, value or readable duration; "
                 "left out", body->malformed, cfg_.lapi.text);
  const auto now = bans::Clock::now();
  auto changes = startup ? book_.resync(*body, now, bans_.held_by(kSourceFamily))
                         : book_.apply(*body, now);
  if (!changes.bans.empty() || !changes.lifts.empty())
    bans_.apply_owned(kSourceFamily, changes.bans, changes.lifts);
  if (kind == Pull::Startup)
    spdlog::info("crowdsec: synchronised with {}: {} decision(s) on {} prefix(es) in force, "
                 "{} lifted, {} not taken (type, scope, origin or scenario filtered out)",
                 cfg_.lapi.text, book_.decisions(), book_.prefixes(), changes.lifts.size(),
                 changes.skipped);
  else if (kind == Pull::Resync && (changes.new_prefixes > 0 || !changes.lifts.empty()))
    spdlog::info("crowdsec: a full pull from {} found what its deltas had missed: {} "
                 "prefix(es) banned, {} lifted", cfg_.lapi.text, changes.new_prefixes,
                 changes.lifts.size());
  return {};
}

void Bouncer::loop() {
  spdlog::info("crowdsec: bouncer pulling decisions from {} every {} ms", cfg_.lapi.text,
               cfg_.poll_interval.count());
  bool startup = true;
  bool down = false;
  unsigned failures = 0;
  auto last_full = std::chrono::steady_clock::now();
  for (;;) {
    const auto started = std::chrono::steady_clock::now();
    Pull kind = Pull::Delta;
    if (startup)
      kind = Pull::Startup;
    else if (started - last_full >= cfg_.resync_interval)
      kind = Pull::Resync;
    auto error = pull(kind);
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    auto delay = cfg_.poll_interval;
    if (error.empty()) {
      if (down)
        spdlog::info("crowdsec: {} answers again after {} failed pull(s)", cfg_.lapi.text, failures);
      down = false;
      failures = 0;
      startup = false;
      if (kind != Pull::Delta) last_full = started;
    } else {
      if (!down)
        spdlog::warn("crowdsec: {}; the {} CrowdSec ban(s) in force stay until they expire, "
                     "and pulls retry with back-off up to {}s", error,
                     bans_.held_by(kSourceFamily).size(), kMaxBackoff.count());
      down = true;
      startup = true;  // LAPI may have restarted with other decisions; deltas would miss that
      ++failures;
      const auto cap = std::max<std::chrono::milliseconds>(cfg_.poll_interval, kMaxBackoff);
      for (unsigned i = 0; i < failures && delay < cap; ++i) delay *= 2;
      delay = std::min(delay, cap);
    }
    if (!wait(delay)) return;
  }
}

}  // namespace snigate::crowdsec
