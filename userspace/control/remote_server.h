#pragma once
// The edge's end of the remote ban channel (`[remote_ban]`, protocol: control/remote_protocol.h):
// a TCP listener that takes ban and unban requests signed with a configured token, from
// allowed peers, rate-limited per peer address, and logs every request with its verdict.
// Requests run the same handlers as the control socket's ban/unban, with the source set to
// "remote:PEER" and `force` never honoured.
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "control/control_server.h"
#include "control/remote_config.h"

namespace snigate::control {

class RemoteBanServer {
 public:
  // Binds cfg.listen; nullptr with `error` set when it cannot. Uses handlers.ban and
  // handlers.unban only.
  static std::unique_ptr<RemoteBanServer> start(boost::asio::io_context& io,
                                                const RemoteBanConfig& cfg,
                                                ControlHandlers handlers, std::string& error);
  // Call on the io_context's thread, or once it has stopped running.
  ~RemoteBanServer();

  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // Connections turned away and requests refused (bad token, rate, allow-list, the ban's own
  // refusal) since start. Thread-safe.
  std::uint64_t refused() const;

  struct State;

 private:
  explicit RemoteBanServer(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace snigate::control
