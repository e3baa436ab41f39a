#pragma once
// The ban subsystem as the rest of snigate sees it: bans made by snigatectl, jails and the
// remote channel land in the pinned BPF tries (enforced by XDP/TC and at accept time) and in
// the SQLite store (so they outlive the daemon and the machine), and end the banned client's
// live connections.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <toml++/toml.h>

#include "bans/ban.h"
#include "bans/ban_check.h"
#include "bans/ban_index.h"
#include "bans/ban_map.h"
#include "bans/ban_store.h"
#include "conns/conn_registry.h"
#include "net/prefix.h"

namespace snigate::bans {

struct BansConfig {
  std::string pin_dir = "/sys/fs/bpf/snigate/v1";
  std::string store = "/var/lib/snigate/bans.db";
  std::vector<std::string> interfaces;  // XDP, TC ingress where XDP cannot attach
  std::vector<net::Prefix> ignore;      // never banned without force (the operator's own)
  std::chrono::seconds sweep_interval{1};  // 0: no sweeper thread (call sweep() yourself)
  // Repeat offenders: a timed ban of a prefix banned N times before lasts duration *
  // repeat_factor^N, at most repeat_max (never less than asked). Bans from source "ctl" keep
  // the duration the operator typed. 1 turns escalation off.
  double repeat_factor = 2.0;
  std::chrono::seconds repeat_max{std::chrono::hours(24 * 30)};
  bool enabled = true;                     // false: callers do not open a BanManager
};

// The [bans] section of the daemon's TOML (absent: defaults). Throws config::ConfigError
// ("FILE:LINE:COL: ...") on unknown keys, bad types, bad prefixes in `ignore`.
BansConfig parse_bans_config(const toml::table& root);

// What reconciliation at open() found and changed.
struct ReconcileReport {
  std::size_t in_sync = 0;          // same ban in map and store: untouched
  std::size_t restored_to_map = 0;  // in the store only (after a reboot, all of them)
  std::size_t recovered_to_store = 0;  // in the map only (made while the disk refused)
  std::size_t expired = 0;          // past their expiry in either: removed and marked
};

// What BanManager::apply_owned() did.
struct OwnedChange {
  std::size_t banned = 0;     // made, or given a new expiry
  std::size_t unchanged = 0;  // already held with that expiry (a resync after a restart)
  std::size_t kept = 0;       // held by another source, which the family does not replace
  std::size_t lifted = 0;
  std::size_t refused = 0;    // invalid, or in [bans] ignore
  std::string first_refusal;  // why the first refused one was
  bool stored = true;         // false: the disk refused; the bans hold in the map anyway
};

struct BanTotals {
  std::uint64_t packets = 0;       // packets the XDP/TC program inspected
  std::uint64_t dropped = 0;       // dropped by the program, v4 + v6
  std::uint64_t refused_at_accept = 0;
  std::size_t active = 0;
  std::size_t unsaved = 0;         // bans/unbans waiting for the disk
};

class BanManager : public BanCheck {
 public:
  // Opens or creates the pinned maps under cfg.pin_dir (reusing pins only when their
  // attributes match), opens the store, reconciles map <-> store (only the differences are
  // written), attaches enforcement to cfg.interfaces and starts the sweeper.
  static std::unique_ptr<BanManager> open(const BansConfig& cfg, conns::ConnRegistry* registry,
                                          std::string& error);
  // The same over any map and store: unit tests pass FakeBanMap and a ManualClock.
  static std::unique_ptr<BanManager> create(const BansConfig& cfg, std::unique_ptr<BanMap> map,
                                            std::unique_ptr<BanStore> store,
                                            std::shared_ptr<const BanClock> clock,
                                            conns::ConnRegistry* registry, std::string& error);
  // The sweeper thread, every `every` (none for 0), if none runs yet. create() starts it
  // with cfg.sweep_interval; snigated creates with 0 and starts it after dropping privileges,
  // so that the thread has the dropped credentials too.
  void start_sweeper(std::chrono::seconds every);
  ~BanManager() override;
  BanManager(const BanManager&) = delete;
  BanManager& operator=(const BanManager&) = delete;

  // Invalid, or inside an `ignore` network without force: ok=false with advice. Banning an
  // already banned prefix replaces its expiry and keeps its drop count. A repeat offender's
  // timed ban is lengthened (BansConfig::repeat_factor); entry.expires says by how much.
  BanOutcome ban(const BanRequest& request);
  bool unban(const net::Prefix& prefix);
  std::vector<BanEntry> list() const;  // with drops from the map's counters
  // Accept-time check, no syscall: against the in-memory mirror of the tries the XDP
  // program reads (BanIndex), with the same expiry rule. A refusal counts as a drop of the
  // matching ban.
  bool banned(const boost::asio::ip::address& client) const override;
  std::uint32_t history_count(const net::Prefix& prefix) const;  // bans of it so far

  // For a producer that keeps its own set of bans in step with an outside authority (the
  // CrowdSec bouncer): every source of the family starts with `family` ("crowdsec:"). Bans
  // and lifts only what the family holds: a prefix banned by another source (snigatectl, a
  // jail) keeps that ban, and is not lifted. Durations are taken as given (no repeat-offender
  // escalation: the authority decides). In slices of a few thousand, each one lock hold and
  // one store transaction, with one log line for the whole call.
  OwnedChange apply_owned(std::string_view family, const std::vector<BanRequest>& bans,
                          const std::vector<net::Prefix>& lifts);
  // The prefixes the family holds now (after a restart: those the store brought back).
  std::vector<net::Prefix> held_by(std::string_view family) const;
  // Removes expired bans from the map, marks them in the store, retries writes the disk
  // refused earlier. Returns how many bans it removed.
  std::size_t sweep();

  BanTotals totals() const;
  const ReconcileReport& reconciled() const { return reconciled_; }
  // Per interface, how enforcement is attached: "veth0: xdp (native)", "eth1: tc ingress".
  std::vector<std::string> enforcement() const { return map_->enforcement(); }

 private:
  struct PendingLift {
    Clock::time_point when;
    std::string why;
    std::uint64_t drops = 0;
  };
  // Why `request` cannot be a ban ("" when it can): ban()'s checks before it takes the lock.
  std::string refusal(const BanRequest& request) const;
  // One slice of apply_owned(), under one hold of the lock, into `out`.
  void apply_owned_slice(std::string_view family, std::span<const BanRequest> bans,
                         std::span<const net::Prefix> lifts, OwnedChange& out);
  // Takes `prefix` out of the map, the index and the active set; its drops, for the store.
  std::uint64_t take_out(const net::Prefix& prefix);

  BanManager(BansConfig cfg, std::unique_ptr<BanMap> map, std::unique_ptr<BanStore> store,
             std::shared_ptr<const BanClock> clock, conns::ConnRegistry* registry);
  bool reconcile(std::string& error);
  std::uint64_t to_boot_ns(const std::optional<Clock::time_point>& expires) const;
  Clock::time_point to_wall(std::uint64_t boot_ns) const;
  bool expired(std::uint64_t expires_ns) const;
  std::chrono::seconds escalated(const BanRequest& request, std::uint32_t earlier) const;
  std::optional<net::Prefix> matching_ban(const boost::asio::ip::address& client) const;
  bool store_add(const BanEntry& entry);
  bool store_lift(const net::Prefix& prefix, const PendingLift& lift);
  void retry_unsaved();
  void sweeper_loop();

  BansConfig cfg_;
  std::unique_ptr<BanMap> map_;
  std::unique_ptr<BanStore> store_;
  std::shared_ptr<const BanClock> clock_;
  conns::ConnRegistry* registry_;
  ReconcileReport reconciled_;
  BanIndex index_;  // what the map holds, for banned(); has its own lock

  mutable std::mutex mu_;  // guards everything below and serialises map+store changes
  std::map<net::Prefix, BanEntry> active_;  // what list() reports besides drops
  std::map<net::Prefix, BanEntry> unsaved_adds_;
  std::map<net::Prefix, PendingLift> unsaved_lifts_;

  mutable std::mutex refused_mu_;  // separate: the accept path never waits for the disk
  mutable std::map<net::Prefix, std::uint64_t> refused_at_accept_;
  mutable std::uint64_t refused_total_ = 0;

  std::mutex sweeper_mu_;
  std::condition_variable sweeper_cv_;
  bool stopping_ = false;
  std::thread sweeper_;
};

}  // namespace snigate::bans
