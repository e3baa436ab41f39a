#pragma once
// The jails running: for each enabled jail a filter, a jail and a follower on its logpath,
// all on one thread of their own (regex work never runs on the daemon's event loop),
// feeding bans to `sink`. snigated calls start_from_config() with BanManager::ban;
// snigate-watch calls start() with its persisted remote queue.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "watch/jail.h"
#include "watch/filter_file.h"
#include "watch/jail_config.h"

namespace snigate::watch {

struct WatcherOptions {
  std::string state_dir;  // positions per jail ("<state_dir>/<jail>.pos"); empty: not saved
  BanSink sink;
  BanHistory history;     // optional: the BanManager's ban counts, for bantime_increment
  BanActive active;       // optional: whether a ban still holds a client (sees unbans)
};

// One jail's counts since it started (a reload that restarts the jails starts them again).
struct JailFigures {
  std::string name;
  std::uint64_t lines = 0;    // log lines read and handled (a ban they caused is made)
  std::uint64_t matches = 0;  // lines a failregex matched (failures, before maxretry)
  std::uint64_t bans = 0;     // failures that reached maxretry and asked for a ban
};

class Watcher {
 public:
  virtual ~Watcher() = default;
  virtual void stop() = 0;  // joins the thread, saves positions; also done by the destructor
  virtual std::vector<std::string> jails() const = 0;
  // Thread-safe: read while the watcher's thread counts. A line is counted once handled, so a
  // count of N means the first N lines' bans (if any) have reached the sink.
  virtual std::vector<JailFigures> figures() const = 0;
};

// Loads every enabled jail's filter first (throws std::runtime_error "jail 'NAME' (FILE:LINE):
// why"), then starts following. No enabled jail: returns nullptr.
std::unique_ptr<Watcher> start(const std::vector<JailConfig>& jails, WatcherOptions options);

// The daemon's entry point: [[jail]] and [watch] from the config document (config::Config::
// raw), errors as config::ConfigError "FILE:LINE:COL: ...".
std::unique_ptr<Watcher> start_from_config(const toml::table& raw, BanSink sink,
                                           BanHistory history = {}, BanActive active = {});

// The filter a jail runs: its filter file (or none) plus inline failregex/ignoreregex and
// datepattern. Throws FilterFileError.
FilterDefinition jail_filter(const JailConfig& jail);

}  // namespace snigate::watch
