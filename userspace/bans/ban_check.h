#pragma once
// What the data path asks of the ban subsystem: is this client address banned now? Called at
// accept time with the peer address and again with the address from a PROXY header.
#include <boost/asio/ip/address.hpp>

namespace snigate::bans {

class BanCheck {
 public:
  virtual ~BanCheck() = default;
  virtual bool banned(const boost::asio::ip::address& client) const = 0;
};

}  // namespace snigate::bans
