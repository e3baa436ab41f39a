#include "conns/conn_registry.h"

#include <algorithm>

namespace snigate::conns {

std::string alpn_list(const std::vector<std::string>& protocols) {
  std::string out;
  for (const auto& p : protocols) {
    if (!out.empty()) out += ',';
    out += p;
  }
  return out;
}

void ConnRegistry::add(ConnInfo info, Kill kill) {
  const std::uint64_t id = info.id;
  std::lock_guard lock(mu_);
  entries_.insert_or_assign(id, Entry{std::move(info), std::move(kill)});
}

void ConnRegistry::update(std::uint64_t id, const std::function<void(ConnInfo&)>& change) {
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(id); it != entries_.end()) change(it->second.info);
}

std::optional<ConnInfo> ConnRegistry::take(std::uint64_t id) {
  std::lock_guard lock(mu_);
  auto node = entries_.extract(id);
  if (node.empty()) return std::nullopt;
  return std::move(node.mapped().info);
}

std::vector<ConnInfo> ConnRegistry::snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<ConnInfo> out;
  out.reserve(entries_.size());
  for (const auto& [id, e] : entries_) out.push_back(e.info);
  std::sort(out.begin(), out.end(), [](const ConnInfo& a, const ConnInfo& b) { return a.id < b.id; });
  return out;
}

std::size_t ConnRegistry::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

std::size_t ConnRegistry::kill_matching(
    const std::function<bool(const boost::asio::ip::address&)>& match, KillReason reason) {
  std::vector<Kill> kills;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : entries_)
      if (match(e.info.client)) kills.push_back(e.kill);
  }
  // Outside the lock: a kill posts to the connection's loop, which then calls take().
  for (auto& k : kills) k(reason);
  return kills.size();
}

}  // namespace snigate::conns
