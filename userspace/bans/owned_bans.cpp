// BanManager's side of a ban family kept in step with an outside authority (ban_manager.h,
// apply_owned): the CrowdSec bouncer's decisions in bulk.
#include <spdlog/spdlog.h>

#include "bans/ban_manager.h"

namespace snigate::bans {
namespace {

// An expiry this close to the one held is the same decision seen again (a resync after a
// restart sees LAPI's remaining time, which moved on by the length of the request).
constexpr auto kSameExpiry = std::chrono::seconds(2);

bool of_family(const BanEntry& entry, std::string_view family) {
  return std::string_view(entry.source).substr(0, family.size()) == family;
}

}  // namespace

OwnedChange BanManager::apply_owned(std::string_view family, const std::vector<BanRequest>& bans,
                                    const std::vector<net::Prefix>& lifts) {
  OwnedChange out;
  std::vector<BanEntry> added;
  std::vector<BanStore::Lift> lifted;
  {
    std::lock_guard lock(mu_);
    const auto now = clock_->wall();
    for (const auto& request : bans) {
      if (auto why = refusal(request); !why.empty()) {
        if (!out.refused++) out.first_refusal = why;
        continue;
      }
      const auto it = active_.find(request.prefix);
      if (it != active_.end() && !of_family(it->second, family)) {
        ++out.kept;
        continue;
      }
      std::optional<Clock::time_point> expires;
      if (request.duration) expires = now + *request.duration;
      if (it != active_.end() && it->second.source == request.source &&
          it->second.expires.has_value() == expires.has_value() &&
          (!expires || (*expires - *it->second.expires < kSameExpiry &&
                        *it->second.expires - *expires < kSameExpiry))) {
        ++out.unchanged;
        continue;
      }
      BanEntry entry;
      entry.prefix = request.prefix;
      entry.created = now;
      entry.expires = expires;
      entry.reason = request.reason;
      entry.source = request.source;
      auto existing = map_->longest_match(request.prefix);
      if (existing && existing->prefix == request.prefix) entry.drops = existing->drops;
      entry.offences = store_->history_count(request.prefix) + 1;
      std::string error;
      const auto expires_ns = to_boot_ns(entry.expires);
      if (!map_->put({request.prefix, expires_ns, entry.drops}, error)) {
        if (!out.refused++) out.first_refusal = "ban " + request.prefix.str() + ": " + error;
        continue;
      }
      index_.put(request.prefix, expires_ns);
      unsaved_lifts_.erase(request.prefix);
      active_[request.prefix] = entry;
      added.push_back(std::move(entry));
      ++out.banned;
    }
    for (const auto& prefix : lifts) {
      const auto it = active_.find(prefix);
      if (it == active_.end() || !of_family(it->second, family)) continue;
      lifted.push_back({prefix, now, "unban", take_out(prefix)});
      ++out.lifted;
    }
    std::string error;
    if (!store_->add_many(added, error)) {
      out.stored = false;
      spdlog::error("bans: {}; {} ban(s) from {} hold in the map and are retried every sweep",
                    error, added.size(), family);
      for (const auto& entry : added) unsaved_adds_[entry.prefix] = entry;
    }
    if (!store_->lift_many(lifted, error)) {
      out.stored = false;
      spdlog::error("bans: {}; lifting {} ban(s) from {} is retried every sweep", error,
                    lifted.size(), family);
      for (const auto& l : lifted) unsaved_lifts_[l.prefix] = {l.when, l.why, l.drops};
    }
  }
  if (registry_ && out.banned) {
    const auto boot_ns = clock_->boot_ns();
    registry_->kill_matching([&](const boost::asio::ip::address& client) {
      return index_.match(net::unmap(client), boot_ns).has_value();
    });
  }
  if (out.banned || out.lifted || out.refused || out.kept)
    spdlog::info("bans: {} {} banned, {} lifted, {} unchanged, {} kept (another source's "
                 "ban), {} refused{}{}",
                 family, out.banned, out.lifted, out.unchanged, out.kept, out.refused,
                 out.refused ? " (first: " + out.first_refusal + ")" : "",
                 out.stored ? "" : "; NOT saved to disk yet");
  return out;
}

std::vector<net::Prefix> BanManager::held_by(std::string_view family) const {
  std::lock_guard lock(mu_);
  std::vector<net::Prefix> out;
  for (const auto& [prefix, entry] : active_)
    if (of_family(entry, family)) out.push_back(prefix);
  return out;
}

}  // namespace snigate::bans
