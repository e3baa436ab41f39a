#include "conns/client_limits.h"

namespace snigate::conns {

net::Prefix ClientLimits::key(const boost::asio::ip::address& client) {
  const auto a = net::unmap(client);
  return a.is_v4() ? net::Prefix::host(a) : net::Prefix::covering(a, 64);
}

std::optional<ClientLimits::Ticket> ClientLimits::admit(const boost::asio::ip::address& client,
                                                        const Caps& caps, std::string* why) {
  const net::Prefix k = key(client);
  std::lock_guard lock(mu_);
  Counts& c = counts_[k];
  const char* cap = nullptr;
  std::size_t held = 0;
  if (caps.prereads && c.prereads >= caps.prereads) {
    cap = "in preread (max_prereads_per_client)";
    held = c.prereads;
  } else if (caps.connections && c.connections >= caps.connections) {
    cap = "open (max_connections_per_client)";
    held = c.connections;
  }
  if (cap) {
    if (c.connections == 0) counts_.erase(k);
    if (why) *why = k.str() + " already has " + std::to_string(held) + " connection(s) " + cap;
    return std::nullopt;
  }
  ++c.connections;
  ++c.prereads;
  return Ticket(this, k);
}

std::size_t ClientLimits::clients() const {
  std::lock_guard lock(mu_);
  return counts_.size();
}

void ClientLimits::release(const net::Prefix& k, bool prereading, bool connection) {
  std::lock_guard lock(mu_);
  auto it = counts_.find(k);
  if (it == counts_.end()) return;
  if (prereading) --it->second.prereads;
  if (connection) --it->second.connections;
  if (it->second.connections == 0) counts_.erase(it);
}

ClientLimits::Ticket::Ticket(Ticket&& other) noexcept
    : owner_(other.owner_), key_(other.key_), prereading_(other.prereading_) {
  other.owner_ = nullptr;
}

ClientLimits::Ticket::~Ticket() {
  if (owner_) owner_->release(key_, prereading_, true);
}

void ClientLimits::Ticket::preread_done() {
  if (!owner_ || !prereading_) return;
  prereading_ = false;
  owner_->release(key_, true, false);
}

}  // namespace snigate::conns
