#include "bans/ban_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>

#include "bans/bpf_ban_map.h"
#include "snigate/bpf/ban_rule.h"

namespace snigate::bans {
namespace {

// Expiries converted between the wall and boot clocks differ by scheduling noise; within
// this they are the same ban and reconciliation leaves them alone.
constexpr std::uint64_t kSameExpiryNs = 2'000'000'000;

// Expired bans lifted per store transaction, and per hold of the ban lock.
constexpr std::size_t kSweepBatch = 500;

std::string describe(const BanEntry& e, Clock::time_point now) {
  if (!e.expires) return "permanently";
  auto left = std::chrono::duration_cast<std::chrono::seconds>(*e.expires - now).count();
  return "for " + std::to_string(left) + "s";
}

bool overlaps(const net::Prefix& a, const net::Prefix& b) {
  return a.is_v4() == b.is_v4() && (a.contains(b) || b.contains(a));
}

}  // namespace

std::unique_ptr<BanManager> BanManager::open(const BansConfig& cfg, conns::ConnRegistry* registry,
                                             std::string& error) {
  auto map = BpfBanMap::open(cfg.pin_dir, cfg.interfaces, error);
  if (!map) return nullptr;
  auto store = BanStore::open(cfg.store, error);
  if (!store) return nullptr;
  if (!store->writable())
    spdlog::error("bans: {}; bans already made stay in force, new ones too, and each is saved "
                  "once the store takes writes again (retried every sweep)",
                  store->problem());
  return create(cfg, std::move(map), std::move(store), std::make_shared<SystemBanClock>(),
                registry, error);
}

std::unique_ptr<BanManager> BanManager::create(const BansConfig& cfg, std::unique_ptr<BanMap> map,
                                               std::unique_ptr<BanStore> store,
                                               std::shared_ptr<const BanClock> clock,
                                               conns::ConnRegistry* registry, std::string& error) {
  std::unique_ptr<BanManager> manager(
      new BanManager(cfg, std::move(map), std::move(store), std::move(clock), registry));
  if (!manager->reconcile(error)) return nullptr;
  manager->start_sweeper(cfg.sweep_interval);
  return manager;
}

void BanManager::start_sweeper(std::chrono::seconds every) {
  if (every.count() <= 0 || sweeper_.joinable()) return;
  cfg_.sweep_interval = every;
  sweeper_ = std::thread([this] { sweeper_loop(); });
}

BanManager::BanManager(BansConfig cfg, std::unique_ptr<BanMap> map, std::unique_ptr<BanStore> store,
                       std::shared_ptr<const BanClock> clock, conns::ConnRegistry* registry)
    : cfg_(std::move(cfg)),
      map_(std::move(map)),
      store_(std::move(store)),
      clock_(std::move(clock)),
      registry_(registry) {}

BanManager::~BanManager() {
  {
    std::lock_guard lock(sweeper_mu_);
    stopping_ = true;
  }
  sweeper_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
}

// Both conversions saturate: a far expiry from a damaged store or map stays far (and never
// wraps into "permanent" (0) or into the past).
std::uint64_t BanManager::to_boot_ns(const std::optional<Clock::time_point>& expires) const {
  if (!expires) return 0;
  auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(*expires - clock_->wall()).count();
  // Already past: one nanosecond after boot, so it reads as expired, never as permanent.
  if (left <= 0) return 1;
  const std::uint64_t now = clock_->boot_ns();
  const auto far = std::numeric_limits<std::uint64_t>::max();
  return static_cast<std::uint64_t>(left) > far - now ? far : now + static_cast<std::uint64_t>(left);
}

Clock::time_point BanManager::to_wall(std::uint64_t boot_ns) const {
  const std::uint64_t now_boot = clock_->boot_ns();
  const std::uint64_t limit = static_cast<std::uint64_t>(kMaxBanDuration.count()) * 1'000'000'000;
  const std::uint64_t ahead = boot_ns > now_boot ? std::min(boot_ns - now_boot, limit) : 0;
  const std::uint64_t behind = boot_ns < now_boot ? std::min(now_boot - boot_ns, limit) : 0;
  auto delta = std::chrono::nanoseconds(static_cast<std::int64_t>(ahead) -
                                        static_cast<std::int64_t>(behind));
  return clock_->wall() + std::chrono::duration_cast<Clock::duration>(delta);
}

bool BanManager::expired(std::uint64_t expires_ns) const {
  return !snigate_ban_holds(expires_ns, clock_->boot_ns());
}

std::chrono::seconds BanManager::escalated(const BanRequest& request, std::uint32_t earlier) const {
  const auto asked = *request.duration;
  if (request.source == "ctl" || earlier == 0 || cfg_.repeat_factor <= 1.0) return asked;
  double seconds = static_cast<double>(asked.count());
  const double cap = static_cast<double>(std::max(asked, cfg_.repeat_max).count());
  for (std::uint32_t i = 0; i < earlier && seconds < cap; ++i) seconds *= cfg_.repeat_factor;
  return std::chrono::seconds(static_cast<std::int64_t>(std::min(seconds, cap)));
}

bool BanManager::reconcile(std::string& error) {
  std::lock_guard lock(mu_);
  std::string read_error;
  auto stored = store_->active(read_error);
  if (!read_error.empty()) {
    error = read_error;
    return false;
  }
  std::map<net::Prefix, MapBan> in_map;
  for (auto& m : map_->entries()) in_map.emplace(m.prefix, m);
  const auto now = clock_->wall();

  for (auto& entry : stored) {
    auto it = in_map.find(entry.prefix);
    std::uint64_t drops = it != in_map.end() ? it->second.drops : 0;
    if (entry.expires && *entry.expires <= now) {
      if (it != in_map.end()) map_->erase(entry.prefix);
      store_lift(entry.prefix, {*entry.expires, "expired", drops});
      ++reconciled_.expired;
    } else {
      auto want = to_boot_ns(entry.expires);
      bool same = it != in_map.end() && !expired(it->second.expires_ns) &&
                  (want > it->second.expires_ns ? want - it->second.expires_ns
                                                : it->second.expires_ns - want) <= kSameExpiryNs &&
                  (want == 0) == (it->second.expires_ns == 0);
      if (same) {
        ++reconciled_.in_sync;
        index_.put(entry.prefix, it->second.expires_ns);
      } else {
        std::string put_error;
        if (!map_->put({entry.prefix, want, drops}, put_error)) {
          error = "restoring ban " + entry.prefix.str() + " from the store: " + put_error;
          return false;
        }
        index_.put(entry.prefix, want);
        ++reconciled_.restored_to_map;
      }
      entry.drops = drops;
      active_[entry.prefix] = entry;
    }
    if (it != in_map.end()) in_map.erase(it);
  }

  for (auto& [prefix, m] : in_map) {
    if (expired(m.expires_ns)) {
      map_->erase(prefix);
      ++reconciled_.expired;
      continue;
    }
    BanEntry entry;
    entry.prefix = prefix;
    entry.created = now;
    if (m.expires_ns) entry.expires = to_wall(m.expires_ns);
    entry.reason = "found in the ban map but not in the store (made while the disk refused)";
    entry.source = "map";
    entry.drops = m.drops;
    entry.offences = store_->history_count(prefix) + 1;
    if (!store_add(entry)) unsaved_adds_[prefix] = entry;
    active_[prefix] = entry;
    index_.put(prefix, m.expires_ns);
    ++reconciled_.recovered_to_store;
  }
  spdlog::info("bans: reconciled map and store: {} in sync, {} restored to the map, {} recovered "
               "into the store, {} expired",
               reconciled_.in_sync, reconciled_.restored_to_map, reconciled_.recovered_to_store,
               reconciled_.expired);
  return true;
}

std::string BanManager::refusal(const BanRequest& request) const {
  const auto& prefix = request.prefix;
  if (request.duration && request.duration->count() <= 0)
    return "ban " + prefix.str() + ": the duration must be positive; omit it for a permanent ban";
  if (request.duration && *request.duration > kMaxBanDuration)
    return "ban " + prefix.str() + ": " + std::to_string(request.duration->count()) +
           "s is longer than the longest timed ban (3650d); omit the duration for a "
           "permanent ban";
  if (request.matched_at && (request.matched_at->time_since_epoch().count() < 0 ||
                             *request.matched_at > Clock::time_point(std::chrono::seconds(
                                                       kLatestUnixSeconds))))
    return "ban " + prefix.str() + ": matched_at is not a time between 1970 and 2100";
  if (prefix.length() == 0)
    return "ban " + prefix.str() + " would refuse every client; ban a narrower prefix";
  if (!request.force) {
    for (const auto& ignored : cfg_.ignore) {
      if (!overlaps(ignored, prefix)) continue;
      return "ban " + prefix.str() + " overlaps " + ignored.str() +
             " from [bans] ignore (your own network?); use --force to ban it anyway";
    }
  }
  return {};
}

BanOutcome BanManager::ban(const BanRequest& request) {
  BanOutcome out;
  const auto& prefix = request.prefix;
  out.error = refusal(request);
  if (!out.error.empty()) return out;

  BanEntry entry;
  entry.prefix = prefix;
  entry.created = clock_->wall();
  entry.reason = request.reason;
  entry.source = request.source;
  entry.jail = request.jail;
  entry.matched_at = request.matched_at;
  entry.sample = request.sample;
  entry.id = request.id;
  {
    std::lock_guard lock(mu_);
    // A retried delivery (the reply to the first was lost): the ban stands as made, and the
    // retry is not counted as one more offence.
    if (auto it = active_.find(prefix); !request.id.empty() && it != active_.end() &&
                                        it->second.id == request.id) {
      out.ok = true;
      out.entry = it->second;
      out.stored = !unsaved_adds_.count(prefix);
      spdlog::info("bans: {} delivered again (id {}); the ban made the first time stands",
                   prefix.str(), request.id);
      return out;
    }
    auto existing = map_->longest_match(prefix);
    if (existing && existing->prefix == prefix) entry.drops = existing->drops;
    const std::uint32_t earlier = store_->history_count(prefix) + (unsaved_adds_.count(prefix) ? 1 : 0);
    entry.offences = earlier + 1;
    if (request.duration) entry.expires = entry.created + escalated(request, earlier);
    std::string error;
    const auto expires_ns = to_boot_ns(entry.expires);
    if (!map_->put({prefix, expires_ns, entry.drops}, error)) {
      out.error = "ban " + prefix.str() + ": " + error;
      return out;
    }
    index_.put(prefix, expires_ns);
    unsaved_lifts_.erase(prefix);
    out.stored = store_add(entry);
    if (out.stored) unsaved_adds_.erase(prefix);
    else unsaved_adds_[prefix] = entry;
    active_[prefix] = entry;
  }
  out.ok = true;
  out.entry = entry;
  if (registry_) {
    out.connections_closed = registry_->kill_matching(
        [&](const boost::asio::ip::address& client) { return prefix.contains(net::unmap(client)); });
  }
  spdlog::info("bans: banned {} {} (source {}{}{}, reason \"{}\", offence {}), {} connection(s) "
               "closed{}",
               prefix.str(), describe(entry, entry.created), entry.source,
               entry.jail.empty() ? "" : ", jail ", entry.jail, entry.reason, entry.offences,
               out.connections_closed, out.stored ? "" : "; NOT saved to disk yet");
  return out;
}

bool BanManager::unban(const net::Prefix& prefix) {
  std::lock_guard lock(mu_);
  const bool known = active_.count(prefix) > 0;
  const bool in_map = [&] {
    auto existing = map_->longest_match(prefix);
    return existing && existing->prefix == prefix;
  }();
  if (!in_map && !known) return false;
  const std::uint64_t drops = take_out(prefix);
  PendingLift lift{clock_->wall(), "unban", drops};
  if (!store_lift(prefix, lift)) unsaved_lifts_[prefix] = lift;
  spdlog::info("bans: unbanned {} ({} drops)", prefix.str(), drops);
  return true;
}

std::uint64_t BanManager::take_out(const net::Prefix& prefix) {
  std::uint64_t drops = 0;
  if (auto existing = map_->longest_match(prefix); existing && existing->prefix == prefix)
    drops = existing->drops;
  map_->erase(prefix);
  index_.erase(prefix);
  active_.erase(prefix);
  unsaved_adds_.erase(prefix);
  std::lock_guard refused(refused_mu_);
  if (auto it = refused_at_accept_.find(prefix); it != refused_at_accept_.end()) {
    drops += it->second;
    refused_at_accept_.erase(it);
  }
  return drops;
}

std::vector<BanEntry> BanManager::list() const {
  std::lock_guard lock(mu_);
  std::map<net::Prefix, MapBan> in_map;
  for (auto& m : map_->entries()) in_map.emplace(m.prefix, m);
  std::vector<BanEntry> out;
  std::lock_guard refused(refused_mu_);
  for (const auto& [prefix, entry] : active_) {
    auto it = in_map.find(prefix);
    if (it == in_map.end() || expired(it->second.expires_ns)) continue;
    BanEntry e = entry;
    e.drops = it->second.drops;
    if (auto r = refused_at_accept_.find(prefix); r != refused_at_accept_.end()) e.drops += r->second;
    out.push_back(std::move(e));
  }
  return out;
}

bool BanManager::banned(const boost::asio::ip::address& client) const {
  auto hit = index_.match(client, clock_->boot_ns());
  if (!hit) return false;
  std::lock_guard refused(refused_mu_);
  ++refused_at_accept_[*hit];
  ++refused_total_;
  return true;
}

std::uint32_t BanManager::history_count(const net::Prefix& prefix) const {
  std::lock_guard lock(mu_);
  return store_->history_count(prefix) + (unsaved_adds_.count(prefix) ? 1 : 0);
}

std::size_t BanManager::sweep() {
  // From the in-memory index: walking the pinned tries costs a syscall per ban, which with
  // 100,000 bans would keep a core busy every second.
  const auto due = index_.expired(clock_->boot_ns());
  std::size_t lifted = 0, batches = 0;
  std::uint64_t drops_total = 0;
  // In batches, each one store transaction, with the lock let go in between: 100,000 bans
  // expiring at once must not keep a ban or unban from snigatectl or a jail waiting seconds.
  for (std::size_t start = 0; start < due.size(); start += kSweepBatch) {
    if (batches++) std::this_thread::yield();  // let a waiting ban/unban in
    std::lock_guard lock(mu_);
    std::vector<BanStore::Lift> lifts;
    for (std::size_t i = start; i < std::min(due.size(), start + kSweepBatch); ++i) {
      const auto& prefix = due[i];
      auto m = map_->longest_match(prefix);
      const bool held = m && m->prefix == prefix;
      // Banned again (or unbanned) since the list was taken: not ours to lift.
      if (held ? !expired(m->expires_ns) : !active_.count(prefix)) continue;
      std::uint64_t drops = held ? m->drops : 0;
      map_->erase(prefix);
      index_.erase(prefix);
      {
        std::lock_guard refused(refused_mu_);
        if (auto it = refused_at_accept_.find(prefix); it != refused_at_accept_.end()) {
          drops += it->second;
          refused_at_accept_.erase(it);
        }
      }
      auto it = active_.find(prefix);
      const auto when =
          it != active_.end() && it->second.expires ? *it->second.expires : clock_->wall();
      if (it != active_.end()) active_.erase(it);
      unsaved_adds_.erase(prefix);
      lifts.push_back({prefix, when, "expired", drops});
      drops_total += drops;
      spdlog::debug("bans: {} expired ({} drops)", prefix.str(), drops);
    }
    std::string error;
    if (!store_->lift_many(lifts, error)) {
      spdlog::error("bans: {}; lifting {} expired ban(s) is retried every sweep", error,
                    lifts.size());
      for (const auto& l : lifts) unsaved_lifts_[l.prefix] = {l.when, l.why, l.drops};
    }
    lifted += lifts.size();
  }
  if (lifted)
    spdlog::info("bans: {} ban(s) expired and lifted ({} drops under them), {} left in force",
                 lifted, drops_total, index_.size());
  std::lock_guard lock(mu_);
  retry_unsaved();
  return lifted;
}

void BanManager::retry_unsaved() {
  for (auto it = unsaved_adds_.begin(); it != unsaved_adds_.end();) {
    std::string error;
    if (!store_->add(it->second, error)) return;  // still refused: keep the rest for later
    spdlog::info("bans: ban {} saved to disk after all", it->first.str());
    it = unsaved_adds_.erase(it);
  }
  for (auto it = unsaved_lifts_.begin(); it != unsaved_lifts_.end();) {
    std::string error;
    if (!store_->lift(it->first, it->second.when, it->second.why, it->second.drops, error)) return;
    it = unsaved_lifts_.erase(it);
  }
}

bool BanManager::store_add(const BanEntry& entry) {
  std::string error;
  if (store_->add(entry, error)) return true;
  spdlog::error("bans: {}; ban of {} holds in the map and is retried every sweep", error,
                entry.prefix.str());
  return false;
}

bool BanManager::store_lift(const net::Prefix& prefix, const PendingLift& lift) {
  std::string error;
  if (store_->lift(prefix, lift.when, lift.why, lift.drops, error)) return true;
  spdlog::error("bans: {}; lifting {} is retried every sweep", error, prefix.str());
  return false;
}

BanTotals BanManager::totals() const {
  auto m = map_->totals();
  BanTotals t;
  t.packets = m.packets;
  t.dropped = m.dropped_v4 + m.dropped_v6;
  {
    std::lock_guard refused(refused_mu_);
    t.refused_at_accept = refused_total_;
  }
  std::lock_guard lock(mu_);
  t.active = active_.size();
  t.unsaved = unsaved_adds_.size() + unsaved_lifts_.size();
  return t;
}

void BanManager::sweeper_loop() {
  std::unique_lock lock(sweeper_mu_);
  while (!stopping_) {
    if (sweeper_cv_.wait_for(lock, cfg_.sweep_interval, [this] { return stopping_; })) break;
    lock.unlock();
    sweep();
    lock.lock();
  }
}

}  // namespace snigate::bans
