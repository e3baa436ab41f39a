#include "upstream/upstream_pool.h"

#include <algorithm>

#include "net/local_address.h"

namespace snigate::upstream {

UpstreamPool::UpstreamPool(const config::BackendConfig& backend,
                           std::function<Clock::time_point()> now)
    : backend_(backend), now_(std::move(now)), peers_(backend_.servers.size()) {
  for (std::size_t i = 0; i < backend_.servers.size(); ++i) {
    Pick& p = picks_.emplace_back(Pick{i, &backend_.servers[i]});
    boost::system::error_code ec;
    const auto address = boost::asio::ip::make_address(p.server->host, ec);
    if (ec) continue;  // a name: resolved per connection
    p.address = address;
    p.own_address = net::is_local_address(address);
  }
}

bool UpstreamPool::up_locked(std::size_t index, Clock::time_point now) const {
  const config::ServerConfig& s = backend_.servers[index];
  // As in nginx, a lone server is never marked down: there is nothing better to try, and
  // refusing every client for fail_timeout after one failure would only lengthen an outage.
  if (s.max_fails == 0 || backend_.servers.size() == 1) return true;
  return now >= peers_[index].down_until;
}

std::optional<UpstreamPool::Pick> UpstreamPool::pick_among(bool backups,
                                                           std::span<const std::size_t> tried,
                                                           Clock::time_point now) {
  // nginx's smooth weighted round robin: every candidate gains its weight, the richest is
  // chosen and pays the total back, so weights 5,1,1 give a a b a c a a rather than a burst.
  long total = 0;
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < peers_.size(); ++i) {
    if (backend_.servers[i].backup != backups) continue;
    if (std::find(tried.begin(), tried.end(), i) != tried.end()) continue;
    if (!up_locked(i, now)) continue;
    long weight = static_cast<long>(backend_.servers[i].weight);
    peers_[i].current_weight += weight;
    total += weight;
    if (!best || peers_[i].current_weight > peers_[*best].current_weight) best = i;
  }
  if (!best) return std::nullopt;
  peers_[*best].current_weight -= total;
  return picks_[*best];
}

std::optional<UpstreamPool::Pick> UpstreamPool::pick(std::span<const std::size_t> tried) {
  std::lock_guard lock(mutex_);
  Clock::time_point now = now_();
  if (auto p = pick_among(false, tried, now)) return p;
  return pick_among(true, tried, now);
}

void UpstreamPool::report_failure(std::size_t index) {
  std::lock_guard lock(mutex_);
  const config::ServerConfig& s = backend_.servers[index];
  if (s.max_fails == 0) return;
  Clock::time_point now = now_();
  Peer& p = peers_[index];
  if (p.fails == 0 || now - p.first_fail >= s.fail_timeout) {
    p.fails = 0;
    p.first_fail = now;
  }
  if (++p.fails >= s.max_fails) {
    p.down_until = now + s.fail_timeout;
    p.fails = 0;
  }
}

void UpstreamPool::report_success(std::size_t index) {
  std::lock_guard lock(mutex_);
  peers_[index].fails = 0;
}

bool UpstreamPool::is_up(std::size_t index) const {
  std::lock_guard lock(mutex_);
  return up_locked(index, now_());
}

}  // namespace snigate::upstream
