#include "watch/jail.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "net/local_address.h"
#include "watch/private_file.h"

namespace snigate::watch {

Jail::Jail(JailConfig config, BanSink sink, BanHistory history, BanActive active)
    : config_(std::move(config)),
      sink_(std::move(sink)),
      history_(std::move(history)),
      active_(std::move(active)) {}

bool Jail::ignored(const boost::asio::ip::address& client) const {
  return net::contains_any(config_.ignoreip, client);
}

bool Jail::covers_self(const net::Prefix& prefix, const boost::asio::ip::address& client) const {
  if (net::is_local_address(client)) return true;
  if (prefix.is_host()) return false;
  // An IPv6 /64 ban of a neighbour would drop the host's own address in the same /64.
  auto own = net::interface_addresses();
  return std::any_of(own.begin(), own.end(), [&](const auto& a) { return prefix.contains(a); });
}

std::chrono::seconds Jail::next_bantime(const net::Prefix& prefix) const {
  if (!config_.bantime_increment) return config_.bantime;
  std::uint32_t previous = 0;
  if (history_) {
    previous = history_(prefix);
  } else if (auto it = own_history_.find(prefix); it != own_history_.end()) {
    previous = it->second;
  }
  const auto& inc = *config_.bantime_increment;
  double secs = static_cast<double>(config_.bantime.count()) * std::pow(inc.factor, previous);
  double cap = static_cast<double>(inc.max.count());
  return std::chrono::seconds(static_cast<std::int64_t>(std::min(secs, cap)));
}

bool Jail::add_failure(const boost::asio::ip::address& address, bans::Clock::time_point when,
                       std::string_view line) {
  auto client = net::unmap(address);
  if (ignored(client)) return false;
  auto prefix = client.is_v4() ? net::Prefix::host(client)
                               : net::Prefix::covering(client, config_.ban_prefix_v6);
  // While banned, the client's lines are what is left in flight: do not ban it again. Once
  // an operator lifted the ban early, its new failures count from zero like anyone's.
  if (auto b = banned_until_.find(prefix); b != banned_until_.end()) {
    bool lifted = active_ && !active_(client);
    if (when < b->second && !lifted) return false;
    banned_until_.erase(b);
  }
  if (++adds_ % 4096 == 0) prune(when);
  auto& times = failures_[prefix];
  times.push_back(when);
  changed_ = true;
  while (!times.empty() && times.front() + config_.findtime < when) times.pop_front();
  if (static_cast<int>(times.size()) < config_.maxretry) return false;

  failures_.erase(prefix);
  changed_ = true;
  if (config_.ignoreself && covers_self(prefix, client)) {
    spdlog::warn("jail {}: not banning {}: it is (or covers) this host's own address; a log line "
                 "naming it is forged or local (set ignoreself = false to ban it anyway)",
                 config_.name, prefix.str());
    return false;
  }
  bans::BanRequest request;
  request.prefix = prefix;
  request.duration = next_bantime(prefix);
  request.reason = "jail " + config_.name + ": " + std::to_string(config_.maxretry) +
                   " failures within " + std::to_string(config_.findtime.count()) + "s";
  request.source = "jail:" + config_.name;
  request.jail = config_.name;
  request.matched_at = when;
  request.sample = std::string(line.substr(0, 1024));
  banned_until_[prefix] = when + *request.duration;
  ++own_history_[prefix];
  sink_(request);
  return true;
}

void Jail::save(const std::string& path) {
  if (!changed_ || path.empty()) return;
  const std::string tmp = path + ".tmp";
  {
    // One prefix a line: "PREFIX SECONDS SECONDS ...", the failures' times since the epoch.
    if (!create_private(tmp)) return;  // retried on the next change
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [prefix, times] : failures_) {
      if (times.empty()) continue;
      out << prefix.str();
      for (auto t : times)
        out << ' ' << std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
      out << '\n';
    }
    out.flush();
    if (!out) return;  // disk full: the old file stays, retried on the next change
  }
  if (std::rename(tmp.c_str(), path.c_str()) == 0) changed_ = false;
}

void Jail::load(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream row(line);
    std::string text;
    row >> text;
    auto prefix = net::Prefix::parse(text);
    if (!prefix) continue;  // a damaged line costs its counts, not the others
    auto& times = failures_[*prefix];
    for (long long secs; row >> secs;)
      times.push_back(bans::Clock::time_point(std::chrono::seconds(secs)));
  }
}

void Jail::prune(bans::Clock::time_point now) {
  std::erase_if(failures_, [&](const auto& kv) {
    return kv.second.empty() || kv.second.back() + config_.findtime < now;
  });
  std::erase_if(banned_until_, [&](const auto& kv) { return kv.second < now; });
  changed_ = true;
}

}  // namespace snigate::watch
