#pragma once
// What snigated runs besides the data path: the ban subsystem (pinned BPF maps + SQLite
// store, checked at accept time), the control socket for snigatectl, the remote ban channel
// for snigate-watch, the in-daemon jails, the metrics endpoint and CrowdSec. main.cpp starts
// them before Daemon::bind() (so the ban check guards the very first accept), their threads
// after the privilege drop, and drops them (before the Daemon) when run() returns.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "crowdsec/crowdsec_config.h"
#include "daemon/daemon.h"

namespace snigate::bans { class BanManager; }
namespace snigate::control {
class ControlServer;
class RemoteBanServer;
}  // namespace snigate::control
namespace snigate::metrics { class MetricsServer; }
namespace snigate::crowdsec {
class AlertPusher;
class Bouncer;
}  // namespace snigate::crowdsec
namespace snigate::watch { class Watcher; }

namespace snigate::daemon {

struct Subsystems {
  explicit Subsystems(Daemon& d);  // out of line: the members are incomplete here
  // The bouncer, jails, the remote channel and the control socket stop first, then the
  // CrowdSec source they push to, then the ban check is taken off the data path before the
  // BanManager goes.
  ~Subsystems();
  Subsystems(const Subsystems&) = delete;
  Subsystems& operator=(const Subsystems&) = delete;

  // What snigated goes on writing (control socket, access log, ban store): given to
  // [daemon] user before a privilege drop.
  std::vector<std::string> owned_files(const config::Config& config) const;
  // The ban sweeper, the jails and CrowdSec's source and bouncer: threads, so started once
  // privileges are dropped (each
  // thread has credentials of its own, inherited from the one that starts it).
  void start_threads(const config::Config& config);
  // "remote_ban=ADDRESS:PORT" and "metrics=ADDRESS:PORT" for the channels that listen.
  std::vector<std::string> bound() const;

  Daemon& daemon;
  std::unique_ptr<bans::BanManager> bans;  // null when [bans] enabled = false
  std::unique_ptr<control::ControlServer> control;
  std::unique_ptr<control::RemoteBanServer> remote;  // null unless [remote_ban] listen is set
  std::unique_ptr<watch::Watcher> jails;             // null without an enabled [[jail]]
  std::unique_ptr<metrics::MetricsServer> metrics;   // null unless [metrics] listen is set
  std::chrono::seconds sweep_interval{0};            // [bans] sweep_interval
  std::unique_ptr<crowdsec::Bouncer> crowdsec;       // null without [crowdsec] api_key_file
  // null without [crowdsec] machine_id; else the bans `push` names go to LAPI as alerts.
  std::unique_ptr<crowdsec::AlertPusher> crowdsec_source;
  bool push_jails = false, push_ctl = false;
  // [crowdsec], read (with its secret files) before a privilege drop; its threads start in
  // start_threads().
  std::optional<crowdsec::CrowdsecConfig> crowdsec_cfg;
};

// Throws std::runtime_error (with advice) when the control socket or the remote channel
// cannot listen, or a section (bans, remote_ban, jail) is wrong. Missing BPF rights or pins
// are not an error: bans are then enforced at accept time only, which is logged once.
std::unique_ptr<Subsystems> start_subsystems(Daemon& daemon, const config::Config& config);

}  // namespace snigate::daemon
