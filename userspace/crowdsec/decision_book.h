#pragma once
// The decisions the bouncer holds, by prefix, and the ban changes each stream answer comes
// to. Pure (no clock of its own, no I/O): the bouncer applies the changes through
// BanManager::apply_owned, tests read them directly.
//
// Several decisions may name one prefix (two scenarios, a cscli ban beside an agent's): the
// prefix is banned until the last of them ends, and lifted when the last is deleted.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bans/ban.h"
#include "crowdsec/decision.h"
#include "net/prefix.h"

namespace snigate::crowdsec {

// Every ban the bouncer makes has a source starting with this: "crowdsec:cscli".
inline constexpr std::string_view kSourceFamily = "crowdsec:";

struct BanChanges {
  std::vector<bans::BanRequest> bans;  // new, or with a new expiry
  std::vector<net::Prefix> lifts;
  std::size_t skipped = 0;  // filtered out (type, scope, origin, scenario) or unreadable value
  std::size_t new_prefixes = 0;  // resync: prefixes in force that the book did not hold before
};

class DecisionBook {
 public:
  explicit DecisionBook(DecisionFilter filter) : filter_(std::move(filter)) {}

  // A startup answer (`?startup=true`): every decision in force. Replaces the book. `held`
  // is what the ban subsystem holds from CrowdSec now (the store's after a restart, or what
  // an earlier book made): those the answer no longer has are lifted.
  BanChanges resync(const StreamBody& all, bans::Clock::time_point now,
                    const std::vector<net::Prefix>& held);
  // A delta: deleted decisions leave the book (a prefix with none left is lifted), new ones
  // join it (a prefix is banned again only when its end moves).
  BanChanges apply(const StreamBody& delta, bans::Clock::time_point now);

  std::size_t prefixes() const { return by_prefix_.size(); }
  std::size_t decisions() const { return prefix_of_.size(); }

 private:
  struct Held {
    bans::Clock::time_point expires;
    std::string origin, scenario;
  };
  using Decisions = std::map<std::int64_t, Held>;
  // Adds `d` when the filter takes it; false when it does not.
  bool add(const Decision& d, bans::Clock::time_point now);
  void remove(std::int64_t id);
  // The ban the decisions of `prefix` come to: the one that ends last.
  static bans::BanRequest request_for(const net::Prefix& prefix, const Decisions& held,
                                      bans::Clock::time_point now);
  static bans::Clock::time_point end_of(const Decisions& held);

  DecisionFilter filter_;
  std::map<net::Prefix, Decisions> by_prefix_;
  std::unordered_map<std::int64_t, net::Prefix> prefix_of_;
};

}  // namespace snigate::crowdsec
