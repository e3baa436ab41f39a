#pragma once
// A real CrowdSec Local API for vm-tests: Debian 12's crowdsec and cscli, unpacked (never
// installed) by tools/install-deps.sh, started as `crowdsec -c CONFIG -no-cs` with a config of
// the test's own: LAPI only (no agent, no acquisition, no online API), listening inside a
// namespace the test made, its SQLite database in a scratch directory. cscli makes the
// credentials and drives decisions. Every wait is bounded.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "integration/harness.h"

namespace snigate::vmtest {

class LocalApi {
 public:
  // Why the binaries are not there (run tools/install-deps.sh), or empty.
  static std::string unavailable();

  // LAPI on `listen` ("127.0.0.1:8090", "10.9.3.1:8090") inside namespace `netns`, its config
  // and database under `dir` (which must exist). Does not start it.
  LocalApi(std::string netns, std::string listen, std::string dir);
  ~LocalApi();
  LocalApi(const LocalApi&) = delete;
  LocalApi& operator=(const LocalApi&) = delete;

  // Starts crowdsec and waits (at most 60 s: the emulated guest is slow) until the API
  // answers; false with the log in `error`. A restart keeps the database: decisions and
  // credentials survive, as they do for a LAPI restarted by its service manager.
  bool start(std::string& error);
  void stop();

  // cscli -c CONFIG ARGS, run in the namespace (it reaches the API with the machine's
  // credentials), killed after `timeout`.
  itest::RunResult cscli(std::vector<std::string> args,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;
  // A bouncer's API key (`cscli bouncers add NAME -k KEY`), and a machine ("watcher")
  // with `password`; the first machine added also becomes cscli's own login. Throw with
  // cscli's output when it refuses.
  std::string add_bouncer(const std::string& name);
  void add_machine(const std::string& name, const std::string& password);

  std::string url() const { return "http://" + listen_; }
  std::string log() const { return process_ ? process_->log() : std::string(); }

 private:
  std::string netns_, listen_, dir_, config_;
  std::unique_ptr<itest::Process> process_;
  int starts_ = 0;
  bool cscli_login_ = false;
};

}  // namespace snigate::vmtest
