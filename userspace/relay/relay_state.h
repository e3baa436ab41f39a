#pragma once
// What the userspace relays share: two directions running as coroutines on the sockets'
// event loop, one idle timer across both, and the rules for how a connection ends (first
// event wins; a reset is passed on as a reset, a FIN as a FIN on that direction only).
#include <chrono>
#include <functional>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "relay/relay.h"

namespace snigate::relay::detail {

enum class Side { Client, Upstream };

struct Direction {
  tcp::socket& from;
  tcp::socket& to;
  std::atomic<std::uint64_t>& count;
  Side from_side;
  Side to_side;
};

class Link {
 public:
  Link(tcp::socket& client, tcp::socket& upstream, const Options& options, Counters& counters);

  Direction client_to_upstream();
  Direction upstream_to_client();

  void touch() { last_activity_ = std::chrono::steady_clock::now(); }
  // `from` sent FIN: pass it on as a FIN to the other side, keep the other direction open.
  void eof(const Direction& d);
  // An I/O error on `side`'s socket ends the whole connection; a reset is passed on as RST.
  void failed(Side side, const boost::system::error_code& ec);

  using Pump = std::function<boost::asio::awaitable<void>(Link&, Direction)>;
  // Runs `pump` once per direction and returns when both are done.
  boost::asio::awaitable<Result> run(Pump pump);

  const Options& options() const { return options_; }

 private:
  void finish(End end, std::string detail = {});
  void close_both(bool reset_client, bool reset_upstream);
  void direction_done();

  tcp::socket& client_;
  tcp::socket& upstream_;
  const Options& options_;
  Counters& counters_;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point last_activity_;
  int done_ = 0;
  bool ended_ = false;
  Result result_;
};

// True for the errors that mean "the peer reset the connection" on read or write.
bool is_reset(const boost::system::error_code& ec);

}  // namespace snigate::relay::detail
