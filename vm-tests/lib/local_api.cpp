#include "local_api.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <stdexcept>
#include <thread>

#include "netns.h"

namespace snigate::vmtest {

namespace {

const std::string kRoot = SNIGATE_CROWDSEC_ROOT;
const std::string kCrowdsec = kRoot + "/usr/bin/crowdsec";
const std::string kCscli = kRoot + "/usr/bin/cscli";

// The profile Debian ships: an alert on an Ip gets a 4h ban. Alerts that carry their own
// decisions (cscli decisions add, snigate's pushes) keep those.
constexpr const char* kProfiles = R"(name: default_ip_remediation
filters:
 - Alert.Remediation == true && Alert.GetScope() == "Ip"
decisions:
 - type: ban
   duration: 4h
on_success: break
)";

}  // namespace

std::string LocalApi::unavailable() {
  if (::access(kCrowdsec.c_str(), X_OK) != 0 || ::access(kCscli.c_str(), X_OK) != 0)
    return "needs CrowdSec's binaries in " + kRoot + " (tools/install-deps.sh unpacks them)";
  return {};
}

LocalApi::LocalApi(std::string netns, std::string listen, std::string dir)
    : netns_(std::move(netns)), listen_(std::move(listen)), dir_(std::move(dir)),
      config_(dir_ + "/config.yaml") {
  // Nothing in it is optional for 1.4.6 -no-cs: without db_config it opens
  // /var/lib/crowdsec/data, without profiles_path the API will not start, and the Prometheus
  // listener would take 6060 in the namespace. WAL lets a bouncer's pull read while an alert
  // is written; in rollback mode each can lock the other out.
  std::ofstream(config_) << "common:\n  daemonize: false\n  log_media: stdout\n  log_level: info\n"
                         << "config_paths:\n  config_dir: " << dir_ << "/\n  data_dir: " << dir_
                         << "/\n  hub_dir: " << dir_ << "/hub/\n  index_path: " << dir_
                         << "/hub/.index.json\n  simulation_path: " << dir_ << "/simulation.yaml\n"
                         << "db_config:\n  type: sqlite\n  db_path: " << dir_
                         << "/crowdsec.db\n  use_wal: true\n"
                         << "api:\n  client:\n    credentials_path: " << dir_
                         << "/local_api_credentials.yaml\n  server:\n    listen_uri: " << listen_
                         << "\n    profiles_path: " << dir_ << "/profiles.yaml\n"
                         << "prometheus:\n  enabled: false\n";
  std::ofstream(dir_ + "/profiles.yaml") << kProfiles;
  std::ofstream(dir_ + "/simulation.yaml") << "simulation: false\n";
}

LocalApi::~LocalApi() { stop(); }

bool LocalApi::start(std::string& error) {
  const auto log = dir_ + "/crowdsec." + std::to_string(++starts_) + ".log";
  in_netns(netns_, [&] {
    process_ = std::make_unique<itest::Process>(
        std::vector<std::string>{"setpriv", "--pdeathsig", "KILL", "--", kCrowdsec, "-c", config_,
                                 "-no-cs"},
        log);
  });
  if (process_->wait_for(std::regex("Local API listening on"), std::chrono::seconds(60)) &&
      process_->alive())
    return true;
  error = "crowdsec did not start its Local API within 60 s; its log:\n" + process_->log();
  return false;
}

void LocalApi::stop() {
  if (!process_) return;
  process_->stop(SIGTERM, std::chrono::seconds(10));
  process_.reset();
}

itest::RunResult LocalApi::cscli(std::vector<std::string> args,
                                 std::chrono::milliseconds timeout) const {
  args.insert(args.begin(), {kCscli, "-c", config_});
  itest::RunResult result;
  // SQLite refuses a write at once, without its busy wait, when another connection's
  // transaction holds the lock it would upgrade (LAPI records each bouncer pull). A refused
  // command changed nothing, so it runs again; CI's 6.1 guest met one in its 2,000 s.
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    in_netns(netns_, [&] { result = itest::run(args, {}, timeout); });
    if (result.output.find("database is locked") == std::string::npos) break;
  }
  return result;
}

std::string LocalApi::add_bouncer(const std::string& name) {
  // cscli would make a key; one of ours keeps the test's log readable.
  const std::string key = "snigate-test-key-" + name + "-0123456789";
  auto out = cscli({"bouncers", "add", name, "-k", key});
  if (out.exit_code != 0) throw std::runtime_error("cscli bouncers add " + name + ": " + out.output);
  return key;
}

void LocalApi::add_machine(const std::string& name, const std::string& password) {
  std::vector<std::string> args{"machines", "add", name, "--password", password};
  if (!cscli_login_)  // cscli's `decisions` commands log in to the API as this machine
    args.insert(args.end(), {"-f", dir_ + "/local_api_credentials.yaml", "--url", url()});
  else
    args.insert(args.end(), {"-f", "/dev/null"});
  auto out = cscli(args);
  if (out.exit_code != 0) throw std::runtime_error("cscli machines add " + name + ": " + out.output);
  cscli_login_ = true;
}

}  // namespace snigate::vmtest
