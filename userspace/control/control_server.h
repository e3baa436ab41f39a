#pragma once
// snigated's control socket: a Unix stream socket speaking the JSON-lines protocol of
// control/protocol.h. The server knows nothing of the daemon's internals; the daemon hands it
// one function per command. Handlers run on the io_context given to start(), one request at a
// time per connection.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "bans/ban.h"
#include "conns/conn_registry.h"
#include "control/protocol.h"
#include "net/prefix.h"

namespace snigate::control {

struct ControlHandlers {
  std::function<bans::BanOutcome(const bans::BanRequest&)> ban;  // bans::BanManager::ban
  std::function<bool(const net::Prefix&)> unban;  // false: there was no such ban
  std::function<std::vector<bans::BanEntry>()> list_bans;
  std::function<nlohmann::json()> stats;
  std::function<std::vector<conns::ConnInfo>()> conns;
  std::function<std::string()> reload;  // "" on success, else the error (config file:line)
                                        // and what still runs
  std::function<std::string()> reopen_logs;  // "" on success, else why the old file stays
  std::function<RouteAnswer(const RouteQuestion&)> route;
};

// Answers one request line with one reply (no newline). Pure apart from the handlers it calls;
// a handler left empty or one that throws gives an error reply, never a crash.
nlohmann::json handle_request(const ControlHandlers& handlers, std::string_view line);

struct ControlOptions {
  mode_t mode = 0600;  // of the socket file; 0600: only the daemon's user may send commands
  std::size_t max_clients = 32;
};

class ControlServer {
 public:
  // Listens on `path`: creates its parent directory (0755) if missing, replaces a stale socket
  // left by a crashed daemon, refuses to start when another process still listens there or
  // when `path` is not a socket. The socket appears atomically with its final mode (bound under
  // a temporary name, chmod-ed, then renamed). On failure returns nullptr and sets `error`.
  static std::unique_ptr<ControlServer> start(boost::asio::io_context& io, const std::string& path,
                                              ControlHandlers handlers, std::string& error,
                                              ControlOptions options = {});
  // Stops listening, ends open connections and removes the socket file if it is still ours.
  // Call on the io_context's thread, or once it has stopped running.
  ~ControlServer();

  const std::string& path() const { return path_; }
  // Connections turned away and requests answered with an error since start. Thread-safe.
  std::uint64_t refused() const;

  struct State;

 private:
  ControlServer(std::string path, std::shared_ptr<State> state);
  std::string path_;
  std::shared_ptr<State> state_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace snigate::control
