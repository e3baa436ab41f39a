#pragma once
// One jail's counting: failures per client within `findtime`; the failure that reaches
// `maxretry` emits a BanRequest to the sink (BanManager::ban in the daemon, the remote queue
// in snigate-watch). IPv6 clients are counted and banned per /ban_prefix_v6. With ignoreself
// (the default, as in fail2ban) the host's own addresses are never banned: asked of the kernel
// at ban time, since a forged log line can name 127.0.0.1 and addresses change after start.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>

#include "bans/ban.h"
#include "watch/jail_config.h"

namespace snigate::watch {

using BanSink = std::function<void(const bans::BanRequest&)>;
// Bans of this prefix so far (BanManager::history_count); empty: the jail counts its own.
using BanHistory = std::function<std::uint32_t(const net::Prefix&)>;
// Whether a ban still holds this client (BanManager::banned). Empty: the jail assumes its own
// bans last their bantime (snigate-watch cannot see an unban at the edge).
using BanActive = std::function<bool(const boost::asio::ip::address&)>;

class Jail {
 public:
  Jail(JailConfig config, BanSink sink, BanHistory history = {}, BanActive active = {});

  // One failure of `client` at `when` (the log line's time), `line` kept as the ban's sample.
  // Returns true when this failure banned the client.
  bool add_failure(const boost::asio::ip::address& client, bans::Clock::time_point when,
                   std::string_view line);

  bool ignored(const boost::asio::ip::address& client) const;
  // ignoreself: `prefix` (the ban about to be made for `client`) would cover an own address.
  bool covers_self(const net::Prefix& prefix, const boost::asio::ip::address& client) const;
  // Duration of the next ban of `prefix` given its history (bantime_increment).
  std::chrono::seconds next_bantime(const net::Prefix& prefix) const;

  const JailConfig& config() const { return config_; }

  // The failures still counting, kept across a restart beside the followed files' positions
  // (which never re-read a line, so counts lost at a stop would be lost for good). Written
  // aside and renamed; save() writes only when something changed since the last save.
  void save(const std::string& path);
  void load(const std::string& path);

 private:
  JailConfig config_;
  BanSink sink_;
  BanHistory history_;
  BanActive active_;
  std::map<net::Prefix, std::deque<bans::Clock::time_point>> failures_;
  std::map<net::Prefix, bans::Clock::time_point> banned_until_;  // no repeat bans meanwhile
  std::map<net::Prefix, std::uint32_t> own_history_;
  std::size_t adds_ = 0;
  bool changed_ = false;  // failures_ differ from what save() wrote last
  void prune(bans::Clock::time_point now);  // bounds memory: forgets windows long closed
};

}  // namespace snigate::watch
