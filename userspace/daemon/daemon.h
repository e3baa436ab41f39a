#pragma once
// The daemon: workers (one io_context thread each, with its own SO_REUSEPORT acceptor per
// listener), the current configuration generation, signals, reload and graceful stop. The
// seam for the subsystems that plug in later (bans, control socket): registry(), stats(),
// reload(), set_ban_check(), control_context().
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/logger.h>

#include "bans/ban_check.h"
#include "config/config.h"
#include "conns/client_limits.h"
#include "conns/conn_registry.h"
#include "proxy/generation.h"
#include "proxy/listener.h"
#include "proxy/session.h"
#include "proxy/stats.h"
#include "net/throttled_warning.h"
#include "quic/quic_listener.h"
#include "kernel/kernel_features.h"

namespace snigate::daemon {

class Daemon {
 public:
  // config_path empty: the embedded default configuration (reload re-reads it too).
  // relay_override (the command line's --relay) wins over [daemon] relay, across reloads.
  Daemon(std::shared_ptr<const config::Config> config, std::string config_path,
         std::optional<relay::Mode> relay_override = std::nullopt);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Binds every listener; throws with advice on failure. Call it once the ban check is
  // installed (set_ban_check). Connections queue in the kernel until serve().
  void bind();
  // Starts the workers: from here on, clients are served. Apart from bind(), so that a
  // privilege drop between the two happens while the process has one thread (capabilities
  // are per thread) and every worker inherits the reduced credentials.
  void serve();
  // Blocks until stopped: SIGTERM/SIGINT stop gracefully, SIGHUP reloads, SIGUSR1 reopens
  // the logs. During the drain
  // a third SIGTERM, or a SIGINT, ends the live connections at once.
  void run();
  // Thread-safe. Stops accepting, lets live connections finish for up to drain_timeout, then
  // ends the rest.
  void stop();
  // Thread-safe. Re-reads the configuration and swaps it in; live connections keep the
  // generation they started with. Listeners that appeared or disappeared are (un)bound.
  // False, with the reason, when the new configuration is rejected (the old one stays).
  bool reload(std::string* error = nullptr);
  // Thread-safe. Reopens the access log file at its path, for log rotation (SIGUSR1 too).
  // "" when done, else why not (the old file stays in use).
  std::string reopen_logs();

  conns::ConnRegistry& registry() { return registry_; }
  proxy::StatsSnapshot stats() const { return stats_.snapshot(); }
  // The relay the configuration (or --relay) asks for; current()->relay is the one in use.
  relay::Mode requested_relay() const { return relay_mode(*current()->config); }
  // May be null; the pointee must outlive the daemon or be replaced first.
  void set_ban_check(const bans::BanCheck* check) { ban_check_ = check; }
  std::shared_ptr<const proxy::Generation> current() const;
  // What the kernel offered at start: the relay and the ban enforcement are chosen from it.
  const kernel::KernelFeatures& kernel() const { return kernel_; }
  // The main thread's loop (signals, drain); optional subsystems may run their I/O on it.
  boost::asio::io_context& control_context() { return control_; }
  // Bound addresses per listener name (port 0 resolved), for tests and logs; a quic
  // listener's UDP address and port in the same form.
  std::vector<boost::asio::ip::tcp::endpoint> bound(const std::string& listener) const;
  // (name, "ADDRESS:PORT") of every bound listener, in configuration order: what
  // `snigatectl stats` shows; bound_addresses() is the same as the ready line's "NAME=ADDRESS:PORT".
  std::vector<std::pair<std::string, std::string>> bound_listeners() const;
  std::vector<std::string> bound_addresses() const;

 private:
  struct Worker {
    boost::asio::io_context io{1};
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
    std::thread thread;
  };

  void bind_listeners(const proxy::Generation& g);
  // Caller holds mu_: one UDP socket per worker for a quic listener.
  std::vector<std::shared_ptr<quic::QuicListener>> bind_quic(const proxy::ListenerSettings& ls);
  // g.max_connections and g.max_pipes (the splice relay's bound, set process-wide) from the
  // descriptor limit and g.relay; logs the budget when it changes.
  void budget_connections(proxy::Generation& g, const proxy::Generation* previous);
  void accept(proxy::Accepted accepted, const std::string& name);
  void begin_drain();
  void drain_listeners_closed();
  void on_signal_while_stopping(int sig);
  void drain_step(std::chrono::steady_clock::time_point deadline, bool killed);
  void finish();

  relay::Mode relay_mode(const config::Config& c) const {
    return relay_override_.value_or(c.daemon.relay);
  }

  std::string config_path_;
  std::optional<relay::Mode> relay_override_;
  kernel::KernelFeatures kernel_;
  std::uint64_t descriptor_limit_ = 0;  // soft RLIMIT_NOFILE, raised to the hard limit
  boost::asio::io_context control_{1};
  std::vector<std::unique_ptr<Worker>> workers_;
  mutable std::mutex mu_;  // generation_, listeners_
  std::shared_ptr<const proxy::Generation> generation_;
  std::map<std::string, std::vector<std::shared_ptr<proxy::Listener>>> listeners_;
  std::map<std::string, std::vector<std::shared_ptr<quic::QuicListener>>> quic_listeners_;
  // The kernel path for quic listeners' routed flows; nullptr: userspace forwards them.
  std::unique_ptr<udp_flow::UdpFlowForwarder> udp_flows_;
  quic::QuicHooks quic_hooks_;
  std::mutex reload_mu_;
  conns::ConnRegistry registry_;
  conns::ClientLimits client_limits_;
  proxy::Stats stats_;
  std::atomic<const bans::BanCheck*> ban_check_{nullptr};
  std::unique_ptr<proxy::AccessLog> access_log_;
  net::ThrottledWarning at_capacity_;
  net::ThrottledWarning no_local_port_;
  std::unique_ptr<proxy::SessionContext> context_;
  std::atomic<bool> stopping_{false};
  std::unique_ptr<boost::asio::steady_timer> drain_timer_;
  int extra_stop_signals_ = 0;  // SIGTERM/SIGINT after the first; control_ thread only
  bool cut_ = false;            // the drain was cut short by a signal
  // Registered at construction, before the subsystems start and the first listener is bound:
  // a signal sent while the ban store loads, or as soon as the daemon serves, is handled
  // (queued until run()), not fatal by default action.
  std::optional<boost::asio::signal_set> signals_;
};

}  // namespace snigate::daemon
