#pragma once
// One listening socket of one worker: SO_REUSEPORT lets every worker bind the same address,
// and the kernel spreads new connections across them.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>  // Boost 1.74 awaitable.hpp uses std::exchange without including it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "net/throttled_warning.h"

namespace snigate::proxy {

// A connection as accept(2) returned it, with what accept already told: the peer's address,
// and the local one when the listener is bound to a specific address (then getpeername and
// getsockname would only repeat them, two system calls per connection).
struct Accepted {
  boost::asio::ip::tcp::socket socket;
  boost::asio::ip::tcp::endpoint peer;
  std::optional<boost::asio::ip::tcp::endpoint> local;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  using tcp = boost::asio::ip::tcp;
  using OnAccept = std::function<void(Accepted, const std::string& name)>;

  // Binds and listens now (so errors surface at start-up or reload); throws
  // boost::system::system_error that names the address. `defer_accept`: see set_defer_accept.
  Listener(boost::asio::io_context& io, std::string name, const tcp::endpoint& endpoint,
           bool defer_accept, OnAccept on_accept);
  void start();
  // Thread-safe (on its own loop): TCP_DEFER_ACCEPT on or off, for connections that arrive
  // from now on; a reload changes it on a kept listener without closing it.
  void set_defer_accept(bool on);
  // Thread-safe: closes the socket on its own loop, then calls `closed` there (if given);
  // live connections are not affected.
  void stop(std::function<void()> closed = {});
  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  // As configured (port 0 stays 0): a reload keeps this listener when it is unchanged.
  const tcp::endpoint& configured() const { return configured_; }
  const std::string& name() const { return name_; }

 private:
  // Connections a burst accepts (each session run up to its first wait) before loop() lets
  // the event loop's other handlers run.
  static constexpr unsigned kAcceptsPerTurn = 16;

  boost::asio::awaitable<void> loop();

  tcp::acceptor acceptor_;
  tcp::endpoint configured_;
  std::optional<tcp::endpoint> local_;  // bound to a specific address: every accepted socket's
  std::string name_;
  OnAccept on_accept_;
  net::ThrottledWarning accept_failures_;
};

}  // namespace snigate::proxy
