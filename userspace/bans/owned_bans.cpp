// BanManager's side of a ban family kept in step with an outside authority (ban_manager.h,
// apply_owned): the CrowdSec bouncer's decisions in bulk.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <span>
#include <thread>

#include "bans/ban_manager.h"

namespace snigate::bans {
namespace {

// An expiry this close to the one held is the same decision seen again (a resync after a
// restart sees LAPI's remaining time, which moved on by the length of the request).
constexpr auto kSameExpiry = std::chrono::seconds(2);

// Bans (and lifts) per lock hold and store transaction.
constexpr std::size_t kOwnedSlice = 2000;

bool of_family(const BanEntry& entry, std::string_view family) {
  return std::string_view(entry.source).substr(0, family.size()) == family;
}

}  // namespace

OwnedChange BanManager::apply_owned(std::string_view family, const std::vector<BanRequest>& bans,
                                    const std::vector<net::Prefix>& lifts) {
  OwnedChange out;
  // In slices, each one lock hold and one store transaction, the lock let go in between: a
  // startup with 100,000 decisions must not keep snigatectl or a jail waiting a second.
  for (std::size_t start = 0; start < std::max(bans.size(), lifts.size()); start += kOwnedSlice) {
    if (start) std::this_thread::yield();
    auto slice = [&](const auto& all) {
      const auto from = std::min(start, all.size());
      return std::span(all.data() + from, std::min(all.size(), start + kOwnedSlice) - from);
    };
    apply_owned_slice(family, slice(bans), slice(lifts), out);
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

void BanManager::apply_owned_slice(std::string_view family, std::span<const BanRequest> bans,
                                   std::span<const net::Prefix> lifts, OwnedChange& out) {
  std::vector<BanEntry> added;
  std::vector<BanStore::Lift> lifted;
  {
    std::lock_guard lock(mu_);
    const auto now = clock_->wall();
    // First what is to be done, then the store's history counts in one pass, then the maps.
    std::vector<const BanRequest*> todo;
    std::vector<net::Prefix> prefixes;
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
      if (it != active_.end() && it->second.source == request.source &&
          it->second.expires.has_value() == request.duration.has_value() &&
          (!request.duration || (now + *request.duration - *it->second.expires < kSameExpiry &&
                                 *it->second.expires - (now + *request.duration) < kSameExpiry))) {
        ++out.unchanged;
        continue;
      }
      todo.push_back(&request);
      prefixes.push_back(request.prefix);
    }
    const auto earlier = store_->history_counts(prefixes);
    for (std::size_t i = 0; i < todo.size(); ++i) {
      const auto& request = *todo[i];
      BanEntry entry;
      entry.prefix = request.prefix;
      entry.created = now;
      if (request.duration) entry.expires = now + *request.duration;
      entry.reason = request.reason;
      entry.source = request.source;
      entry.offences = earlier[i] + (unsaved_adds_.count(request.prefix) ? 1 : 0) + 1;
      if (active_.count(request.prefix))  // a ban in force keeps its drop count
        if (auto existing = map_->longest_match(request.prefix); existing && existing->prefix == request.prefix)
          entry.drops = existing->drops;
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
}

std::vector<net::Prefix> BanManager::held_by(std::string_view family) const {
  std::lock_guard lock(mu_);
  std::vector<net::Prefix> out;
  for (const auto& [prefix, entry] : active_)
    if (of_family(entry, family)) out.push_back(prefix);
  return out;
}

}  // namespace snigate::bans
