#include "crowdsec/decision_book.h"

#include <algorithm>

namespace snigate::crowdsec {

bool DecisionBook::add(const Decision& d, bans::Clock::time_point now) {
  if (!filter_.accepts(d) || d.duration.count() <= 0) return false;
  auto prefix = decision_prefix(d);
  if (!prefix) return false;
  // An id seen again (a resync racing a delta) moves to its newest value.
  if (prefix_of_.count(d.id)) remove(d.id);
  by_prefix_[*prefix][d.id] = Held{now + d.duration, d.origin, d.scenario};
  prefix_of_.emplace(d.id, *prefix);
  return true;
}

void DecisionBook::remove(std::int64_t id) {
  auto it = prefix_of_.find(id);
  if (it == prefix_of_.end()) return;
  auto p = by_prefix_.find(it->second);
  if (p != by_prefix_.end()) {
    p->second.erase(id);
    if (p->second.empty()) by_prefix_.erase(p);
  }
  prefix_of_.erase(it);
}

bans::Clock::time_point DecisionBook::end_of(const Decisions& held) {
  auto last = bans::Clock::time_point::min();
  for (const auto& [id, h] : held) last = std::max(last, h.expires);
  return last;
}

bans::BanRequest DecisionBook::request_for(const net::Prefix& prefix, const Decisions& held,
                                           bans::Clock::time_point now) {
  const Held* last = nullptr;
  for (const auto& [id, h] : held)
    if (!last || h.expires > last->expires) last = &h;
  bans::BanRequest r;
  r.prefix = prefix;
  // Whole seconds, rounded up: a ban may outlast its decision by under a second, never end
  // before it.
  const auto left = std::chrono::ceil<std::chrono::seconds>(last->expires - now);
  r.duration = std::clamp(left, std::chrono::seconds(1), bans::kMaxBanDuration);
  r.source = std::string(kSourceFamily) + (last->origin.empty() ? "unknown" : last->origin);
  r.reason = last->scenario;
  return r;
}

BanChanges DecisionBook::resync(const StreamBody& all, bans::Clock::time_point now,
                                const std::vector<net::Prefix>& held) {
  const auto before = std::move(by_prefix_);
  by_prefix_.clear();
  prefix_of_.clear();
  BanChanges out;
  for (const auto& d : all.added)
    if (!add(d, now)) ++out.skipped;
  for (const auto& entry : by_prefix_) out.new_prefixes += before.count(entry.first) == 0;
  out.bans.reserve(by_prefix_.size());
  for (const auto& [prefix, decisions] : by_prefix_)
    out.bans.push_back(request_for(prefix, decisions, now));
  for (const auto& prefix : held)
    if (!by_prefix_.count(prefix)) out.lifts.push_back(prefix);
  return out;
}

BanChanges DecisionBook::apply(const StreamBody& delta, bans::Clock::time_point now) {
  BanChanges out;
  // Each touched prefix's end before the delta (min(): it had none).
  std::map<net::Prefix, bans::Clock::time_point> before;
  auto touch = [&](const net::Prefix& prefix) {
    if (before.count(prefix)) return;
    auto it = by_prefix_.find(prefix);
    before[prefix] = it == by_prefix_.end() ? bans::Clock::time_point::min() : end_of(it->second);
  };
  for (const auto& d : delta.deleted) {
    auto it = prefix_of_.find(d.id);
    if (it == prefix_of_.end()) continue;  // filtered out when it came, or never seen
    touch(it->second);
    remove(d.id);
  }
  for (const auto& d : delta.added) {
    auto prefix = filter_.accepts(d) ? decision_prefix(d) : std::nullopt;
    if (!prefix) {
      ++out.skipped;
      continue;
    }
    touch(*prefix);
    if (!add(d, now)) ++out.skipped;
  }
  for (const auto& [prefix, end] : before) {
    auto it = by_prefix_.find(prefix);
    if (it == by_prefix_.end()) {
      if (end != bans::Clock::time_point::min()) out.lifts.push_back(prefix);
    } else if (end_of(it->second) != end) {
      out.bans.push_back(request_for(prefix, it->second, now));
    }
  }
  return out;
}

}  // namespace snigate::crowdsec
