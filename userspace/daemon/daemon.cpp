#include "daemon/daemon.h"

#include <algorithm>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "config/endpoint.h"
#include "daemon/fd_budget.h"
#include "proxy/quic_flows.h"
#include "daemon/service_notify.h"
#include "daemon/sockmap_settings.h"
#include "kernel/relay_choice.h"
#include "relay/pipe_pool.h"
#include "udp_flow/udp_flow_forwarder.h"

namespace snigate::daemon {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

void log_report(const std::string& lines) {
  std::size_t start = 0;
  for (std::size_t end; (end = lines.find('\n', start)) != std::string::npos; start = end + 1)
    spdlog::info("{}", lines.substr(start, end - start));
}

// The kernel path for quic listeners' routed flows, or nullptr with the reason said once:
// userspace forwarding is the fallback. Opened at start only, as root.
std::unique_ptr<udp_flow::UdpFlowForwarder> open_kernel_path(const config::Config& c,
                                                             const kernel::KernelFeatures& k) {
  if (std::none_of(c.listeners.begin(), c.listeners.end(),
                   [](const auto& l) { return l.protocol == config::Protocol::Quic; }))
    return nullptr;
  const auto& interfaces = c.daemon.quic_kernel_interfaces;
  std::string why;
  std::unique_ptr<udp_flow::UdpFlowForwarder> path;
  if (interfaces.empty())
    why = "[daemon] quic_kernel_interfaces names no interface";
  else if (std::string gap = kernel::KernelFeatures::missing(k.udp_flow_programs); !gap.empty())
    why = gap;
  else
    path = udp_flow::UdpFlowForwarder::open(interfaces, why);
  std::string names;
  for (const auto& i : interfaces) names += (names.empty() ? "" : ", ") + i;
  if (path)
    spdlog::info("quic: routed flows forwarded by the kernel path (tc ingress on {})", names);
  else
    spdlog::warn("quic: kernel path unavailable: {}; forwarding in userspace", why);
  return path;
}

}  // namespace

Daemon::Daemon(std::shared_ptr<const config::Config> config, std::string config_path,
               std::optional<relay::Mode> relay_override)
    : config_path_(std::move(config_path)),
      relay_override_(relay_override),
      kernel_(kernel::probe_kernel()) {
  log_report(kernel::format_report(kernel_));
  const DescriptorLimit limit = raise_descriptor_limit();
  descriptor_limit_ = limit.soft;
  if (limit.soft != limit.was)
    spdlog::info("descriptors: soft limit raised from {} to the hard limit, {}", limit.was,
                 limit.soft);
  auto g = proxy::build_generation(std::move(config));
  g->relay = kernel::select_relay(relay_mode(*g->config), sockmap_of(g->config->daemon),
                                  kernel_)
                 .relay;
  access_log_ = std::make_unique<proxy::AccessLog>(g->config->daemon.access_log,
                                            g->config->daemon.access_log_format);
  context_.reset(new proxy::SessionContext{registry_, stats_, *access_log_, ban_check_,
                                           client_limits_, at_capacity_, no_local_port_});
  unsigned n = g->config->daemon.workers;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>());
  budget_connections(*g, nullptr);
  stats_.attach(*g);
  generation_ = g;
  quic_hooks_.routes = [this](const std::string& listener) {
    return proxy::flow_routes(current(), listener, stats_, *access_log_);
  };
  quic_hooks_.banned = [this](const asio::ip::address& client) {
    const bans::BanCheck* check = ban_check_.load();
    return check && check->banned(client);
  };
  quic_hooks_.registry = &registry_;
  udp_flows_ = open_kernel_path(*g->config, kernel_);
  quic_hooks_.kernel = udp_flows_.get();
  signals_.emplace(control_, SIGINT, SIGTERM, SIGHUP);
  signals_->add(SIGUSR1);
}

Daemon::~Daemon() {
  for (auto& w : workers_) {
    w->guard.reset();
    w->io.stop();
    if (w->thread.joinable()) w->thread.join();
  }
}

std::shared_ptr<const proxy::Generation> Daemon::current() const {
  std::lock_guard lock(mu_);
  return generation_;
}

std::vector<asio::ip::tcp::endpoint> Daemon::bound(const std::string& listener) const {
  std::lock_guard lock(mu_);
  std::vector<asio::ip::tcp::endpoint> out;
  if (auto it = listeners_.find(listener); it != listeners_.end())
    for (auto& l : it->second) out.push_back(l->local_endpoint());
  if (auto it = quic_listeners_.find(listener); it != quic_listeners_.end())
    for (auto& l : it->second)
      out.emplace_back(l->local_endpoint().address(), l->local_endpoint().port());
  return out;
}

void Daemon::accept(proxy::Accepted accepted, const std::string& name) {
  auto g = current();
  const proxy::ListenerSettings* l = g->listener(name);
  if (!l) return;  // removed by a reload a moment ago
  std::make_shared<proxy::Session>(std::move(accepted), std::move(g), *l, *context_)->start();
}

// Caller holds mu_. Binds what is new, closes what is gone; kept listeners stay bound, so a
// reload never refuses a connection on an address that stays configured.
std::vector<std::shared_ptr<quic::QuicListener>> Daemon::bind_quic(const proxy::ListenerSettings& ls) {
  std::vector<std::shared_ptr<quic::QuicListener>> per_worker;
  auto count = std::make_shared<quic::FlowCount>();
  asio::ip::tcp::endpoint ep = ls.config->listen;
  for (auto& w : workers_) {
    per_worker.push_back(
        std::make_shared<quic::QuicListener>(w->io, ls.name(), ep, count, quic_hooks_));
    const auto bound = per_worker.back()->local_endpoint();
    ep = {bound.address(), bound.port()};  // port 0: the others share the chosen port
  }
  return per_worker;
}

void Daemon::bind_listeners(const proxy::Generation& g) {
  std::map<std::string, std::vector<std::shared_ptr<proxy::Listener>>> next;
  std::map<std::string, std::vector<std::shared_ptr<quic::QuicListener>>> next_quic;
  // Only what is bound here starts: a kept listener runs its loop already, and starting it
  // again would add a loop (and arm its sweep timer from this thread while its worker uses it).
  std::vector<std::shared_ptr<proxy::Listener>> fresh;
  std::vector<std::shared_ptr<quic::QuicListener>> fresh_quic;
  // Nothing running changes until every bind has succeeded: a bind that throws (a port in use)
  // rejects the reload, and the running listeners must still be the daemon's own then.
  std::vector<std::pair<proxy::Listener*, bool>> defer_accept;
  for (const auto& ls : g.listeners) {
    if (ls.config->protocol == config::Protocol::Quic) {
      auto it = quic_listeners_.find(ls.name());
      if (it != quic_listeners_.end() && it->second.front()->configured() == ls.config->listen) {
        next_quic[ls.name()] = it->second;
        continue;
      }
      auto per_worker = bind_quic(ls);
      const auto bound = per_worker.front()->local_endpoint();
      const std::string host = bound.address().to_string();
      spdlog::info("listener {} bound to {}:{} (quic, UDP), {} worker(s)", ls.name(),
                   bound.address().is_v6() ? "[" + host + "]" : host, bound.port(),
                   per_worker.size());
      fresh_quic.insert(fresh_quic.end(), per_worker.begin(), per_worker.end());
      next_quic[ls.name()] = std::move(per_worker);
      continue;
    }
    auto it = listeners_.find(ls.name());
    if (it != listeners_.end() && it->second.front()->configured() == ls.config->listen) {
      for (auto& l : it->second) defer_accept.emplace_back(l.get(), ls.config->defer_accept);
      next[ls.name()] = it->second;
      continue;
    }
    std::vector<std::shared_ptr<proxy::Listener>> per_worker;
    asio::ip::tcp::endpoint ep = ls.config->listen;
    for (auto& w : workers_) {
      auto on_accept = [this](proxy::Accepted a, const std::string& n) { accept(std::move(a), n); };
      per_worker.push_back(std::make_shared<proxy::Listener>(w->io, ls.name(), ep,
                                                         ls.config->defer_accept, on_accept));
      ep = per_worker.back()->local_endpoint();  // port 0: the others share the chosen port
    }
    const auto bound = per_worker.front()->local_endpoint();
    const std::string host = bound.address().to_string();
    spdlog::info("listener {} bound to {}:{} ({}{}), {} worker(s)", ls.name(),
                 bound.address().is_v6() ? "[" + host + "]" : host, bound.port(),
                 config::to_string(ls.config->protocol),
                 ls.config->proxy_protocol_in ? ", PROXY in" : "", per_worker.size());
    fresh.insert(fresh.end(), per_worker.begin(), per_worker.end());
    next[ls.name()] = std::move(per_worker);
  }
  // Gone: not kept under its name (removed, or bound anew at another address).
  auto kept = [](const auto& in, const std::string& name, const auto& l) {
    auto it = in.find(name);
    return it != in.end() && it->second.front() == l.front();
  };
  for (auto& [name, old] : listeners_) {
    if (kept(next, name, old)) continue;
    spdlog::info("listener {} removed", name);
    for (auto& l : old) l->stop();
  }
  for (auto& [name, old] : quic_listeners_) {
    if (kept(next_quic, name, old)) continue;
    spdlog::info("listener {} removed; its routed flows go on until idle", name);
    for (auto& l : old) l->stop();
  }
  for (auto [l, on] : defer_accept) l->set_defer_accept(on);
  listeners_ = std::move(next);
  quic_listeners_ = std::move(next_quic);
  for (auto& l : fresh) l->start();
  for (auto& l : fresh_quic) l->start();
}

void Daemon::bind() {
  std::lock_guard lock(mu_);
  bind_listeners(*generation_);
}

std::vector<std::pair<std::string, std::string>> Daemon::bound_listeners() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& ls : current()->listeners)
    if (auto endpoints = bound(ls.name()); !endpoints.empty())
      out.emplace_back(ls.name(), config::format_endpoint(endpoints.front()));
  return out;
}

std::vector<std::string> Daemon::bound_addresses() const {
  std::vector<std::string> out;
  for (const auto& [name, address] : bound_listeners()) out.push_back(name + "=" + address);
  return out;
}

void Daemon::serve() {
  access_log_->start();
  for (auto& w : workers_) {
    w->guard.emplace(w->io.get_executor());
    w->thread = std::thread([&io = w->io] {
      for (;;) {
        try {
          io.run();
          return;
        } catch (const std::exception& e) {
          // A bug must not take the whole edge down; it is logged and the loop goes on.
          spdlog::error("worker: unexpected exception: {}", e.what());
        }
      }
    });
  }
}

bool Daemon::reload(std::string* error) {
  std::lock_guard reload_lock(reload_mu_);
  // Accepted or refused, the daemon serves a configuration when this returns: READY=1 again.
  // Not once stopping, when the manager was told STOPPING=1 and must not see READY=1.
  struct Notify {
    bool on;
    explicit Notify(bool stopping) : on(!stopping) { if (on) service::reloading(); }
    ~Notify() { if (on) service::ready(); }
  } notify{stopping_};
  try {
    if (stopping_) throw std::runtime_error("the daemon is stopping");
    std::shared_ptr<const config::Config> cfg =
        config_path_.empty() ? std::make_shared<const config::Config>(config::load_string(
                                   config::embedded_default(), "<embedded default>"))
                             : std::make_shared<const config::Config>(config::load_file(config_path_));
    auto g = proxy::build_generation(cfg);
    auto old = current();
    const auto& was = old->config->daemon;
    g->relay = relay_mode(*cfg) == relay_mode(*old->config) &&
                       sockmap_of(cfg->daemon) == sockmap_of(was)
                   ? old->relay
                   : kernel::select_relay(relay_mode(*cfg), sockmap_of(cfg->daemon),
                                          kernel_)
                         .relay;
    budget_connections(*g, old.get());
    stats_.attach(*g);
    std::lock_guard lock(mu_);
    bind_listeners(*g);
    generation_ = std::move(g);
  } catch (const std::exception& e) {
    spdlog::error("reload rejected, keeping the running configuration: {}", e.what());
    if (error) *error = e.what();
    return false;
  }
  spdlog::info("configuration reloaded from {}",
               config_path_.empty() ? "the embedded default" : config_path_);
  return true;
}

std::string Daemon::reopen_logs() {
  // The daemon's own log goes to its standard output (a terminal, the service manager's
  // journal), never to a file of its own: nothing of it to reopen.
  std::string error = access_log_->reopen();
  if (error.empty())
    spdlog::info("access log reopened");
  else
    spdlog::error("access log not reopened: {}", error);
  return error;
}

void Daemon::run() {
  asio::signal_set& signals = *signals_;
  std::function<void(const error_code&, int)> on_signal = [&](const error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      reload();
    } else if (sig == SIGUSR1) {
      reopen_logs();
    } else if (!stopping_) {
      spdlog::info("signal {}: stopping", sig);
      stop();
    } else {
      on_signal_while_stopping(sig);
    }
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  // Keeps run() going until finish() has drained and joined the workers.
  auto guard = asio::make_work_guard(control_);
  control_.run();
}

// During a drain: a second SIGTERM is answered (not silently dropped) and a third, or a
// SIGINT (Ctrl-C twice), ends the live connections now instead of at drain_timeout.
void Daemon::on_signal_while_stopping(int sig) {
  ++extra_stop_signals_;
  if (sig == SIGTERM && extra_stop_signals_ == 1) {
    spdlog::warn("signal {} again: already stopping, {} connection(s) still draining until "
                 "drain_timeout; send it once more (or SIGINT) to end them now",
                 sig, registry_.size());
    return;
  }
  if (cut_) return;
  cut_ = true;
  spdlog::warn("signal {}: ending the {} draining connection(s) now", sig, registry_.size());
  // Before the listeners have closed, this is a no-op: drain_listeners_closed sees cut_ and
  // uses no drain time.
  if (drain_timer_) {
    drain_timer_->cancel();
    drain_step(std::chrono::steady_clock::now(), false);
  }
}

void Daemon::stop() {
  if (stopping_.exchange(true)) return;
  service::stopping();
  asio::post(control_, [this] { begin_drain(); });
}

void Daemon::budget_connections(proxy::Generation& g, const proxy::Generation* previous) {
  const auto& d = g.config->daemon;
  const relay::Mode running = g.relay->mode();
  const auto b = daemon::budget_connections({.limit = descriptor_limit_,
                                             .listening_sockets =
                                                 g.listeners.size() * workers_.size(),
                                             .pipes = g.relay->uses_pipes(),
                                             .max_connections = d.max_connections,
                                             .max_pipes = d.max_pipes,
                                             .default_max_connections =
                                                 d.kDefaultMaxConnections});
  g.max_connections = b.max_connections;
  g.max_pipes = b.max_pipes;
  relay::set_max_pipes(b.max_pipes);
  if (previous && previous->max_connections == g.max_connections &&
      previous->max_pipes == g.max_pipes)
    return;
  const bool splices = g.relay->uses_pipes();
  if (b.pipes_capped)
    spdlog::warn("descriptors: [daemon] max_pipes = {} needs {} descriptors, more than half of "
                 "what the limit of {} leaves for connections and pipes: using {} (raise "
                 "LimitNOFILE or ulimit -n to allow more)",
                 *d.max_pipes, *d.max_pipes * kDescriptorsPerPipe, descriptor_limit_,
                 b.max_pipes);
  if (b.capped)
    spdlog::warn("descriptors: [daemon] max_connections = {} needs up to {} descriptors under "
                 "relay {} ({} each{}), and the limit is {}: using {} (raise LimitNOFILE or "
                 "ulimit -n to allow more)",
                 *d.max_connections, *d.max_connections * kDescriptorsPerConnection,
                 relay::to_string(running), kDescriptorsPerConnection,
                 splices ? fmt::format(", and {} pipes at {}", b.max_pipes, kDescriptorsPerPipe)
                         : "",
                 descriptor_limit_,
                 b.max_connections);
  else
    spdlog::info("descriptors: limit {}, {} per connection under relay {}: max_connections {}{}{}",
                 descriptor_limit_, kDescriptorsPerConnection, relay::to_string(running),
                 b.max_connections, d.max_connections ? "" : " (derived from the limit)",
                 splices ? fmt::format(", max_pipes {}{}", b.max_pipes,
                                       d.max_pipes ? "" : " (a quarter of max_connections)")
                         : "");
}

void Daemon::begin_drain() {
  std::vector<std::shared_ptr<proxy::Listener>> closing;
  std::vector<std::shared_ptr<quic::QuicListener>> closing_quic;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, ls] : listeners_) closing.insert(closing.end(), ls.begin(), ls.end());
    for (auto& [name, ls] : quic_listeners_)
      closing_quic.insert(closing_quic.end(), ls.begin(), ls.end());
    listeners_.clear();
    quic_listeners_.clear();
  }
  if (closing.empty() && closing_quic.empty()) return drain_listeners_closed();
  // Each acceptor closes on its own worker's loop: "stopped accepting" is logged, and the
  // drain starts, only once the last one has, so a client told so is really refused. A quic
  // listener stops taking new flows; its routed ones drain like connections.
  auto left = std::make_shared<std::atomic<std::size_t>>(closing.size() + closing_quic.size());
  auto closed = [this, left] {
    if (left->fetch_sub(1) == 1) asio::post(control_, [this] { drain_listeners_closed(); });
  };
  for (auto& l : closing) l->stop(closed);
  for (auto& l : closing_quic) l->stop(closed);
}

void Daemon::drain_listeners_closed() {
  std::chrono::milliseconds drain;
  {
    std::lock_guard lock(mu_);
    drain = generation_->config->daemon.drain_timeout;
  }
  spdlog::info("stopped accepting; draining {} connection(s) for up to {}ms", registry_.size(),
               drain.count());
  if (!drain_timer_) drain_timer_ = std::make_unique<asio::steady_timer>(control_);
  drain_step(std::chrono::steady_clock::now() + (cut_ ? std::chrono::milliseconds(0) : drain),
             false);
}

void Daemon::drain_step(std::chrono::steady_clock::time_point deadline, bool killed) {
  auto now = std::chrono::steady_clock::now();
  if (registry_.size() == 0 || (killed && now >= deadline)) return finish();
  if (!killed && now >= deadline) {
    const std::size_t n = registry_.kill_matching([](const asio::ip::address&) { return true; },
                                           conns::KillReason::Drain);
    spdlog::info("drain timeout: ending {} connection(s)", n);
    killed = true;
    deadline = now + std::chrono::seconds(2);
  }
  drain_timer_->expires_after(std::chrono::milliseconds(50));
  drain_timer_->async_wait([this, deadline, killed](const error_code& ec) {
    if (!ec) drain_step(deadline, killed);
  });
}

void Daemon::finish() {
  for (auto& w : workers_) w->guard.reset();
  for (auto& w : workers_) {
    w->io.stop();
    if (w->thread.joinable()) w->thread.join();
  }
  spdlog::info("stopped");
  control_.stop();
}

}  // namespace snigate::daemon
