#include "watch/watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include <spdlog/spdlog.h>

#include "watch/filter.h"
#include "watch/follower.h"

namespace snigate::watch {

namespace {

struct RunningJail {
  JailConfig config;
  Filter filter;
  Jail jail;
  std::unique_ptr<Follower> follower;
  std::string failures_file;  // "<state_dir>/<jail>.failures"; empty: counts are not kept
  bool warned_dns = false;
  std::uint64_t limit_hits = 0;  // lines a regex gave up on (PCRE2 match limit)
  // Written by the watcher's thread, read by a scrape: relaxed atomics (`lines` release).
  std::atomic<std::uint64_t> lines{0}, matches{0}, bans{0};
  std::chrono::steady_clock::time_point limit_logged{};

  RunningJail(const JailConfig& c, const FilterDefinition& def, BanSink sink, BanHistory history,
              BanActive active)
      : config(c), filter(def), jail(c, std::move(sink), std::move(history), std::move(active)) {}

  void on_line(std::string_view line) {
    handle(line);
    // Counted once handled, so whoever reads the count also sees the ban the line caused (the
    // sink ran before): a test waits for it to prove a line was read and banned nothing.
    lines.fetch_add(1, std::memory_order_release);
  }

  void handle(std::string_view line) {
    auto now = std::chrono::system_clock::now();
    auto r = filter.process(line, now);
    if (r.limit_hit) count_limit_hit();
    if (r.kind != LineResult::Kind::Matched || r.host.empty()) return;
    matches.fetch_add(1, std::memory_order_relaxed);
    if (!r.host_is_ip) {
      if (!warned_dns)
        spdlog::warn("jail {}: '{}' is a host name; snigate bans addresses only, use <ADDR>",
                     config.name, r.host);
      warned_dns = true;
      return;
    }
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(r.host, ec);
    if (ec) return;
    // A line stamped in the future (clock skew, time zone) counts as now, like fail2ban;
    // one older than findtime (a backlog read after a restart) no longer counts.
    auto when = r.time.value_or(now);
    if (when > now + std::chrono::seconds(60)) when = now;
    if (when + config.findtime < now) return;
    if (jail.add_failure(address, when, line)) bans.fetch_add(1, std::memory_order_relaxed);
  }

  // Logged on the first hit, then at most once a minute with the running count.
  void count_limit_hit() {
    ++limit_hits;
    auto now = std::chrono::steady_clock::now();
    if (limit_hits > 1 && now - limit_logged < std::chrono::minutes(1)) return;
    limit_logged = now;
    spdlog::warn("jail {}: {} line(s) so far made a regex give up at PCRE2's match limit; such a "
                 "line is neither a failure nor a miss. A regex with nested repeats ((a+)+) "
                 "backtracks without end on hostile lines: rewrite it (`snigated --check` probes "
                 "for this)", config.name, limit_hits);
  }
};

class ThreadWatcher : public Watcher {
 public:
  explicit ThreadWatcher(std::vector<std::unique_ptr<RunningJail>> jails)
      : jails_(std::move(jails)), wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (wake_ < 0) throw std::runtime_error("eventfd failed");
    thread_ = std::thread([this] { run(); });
  }
  ~ThreadWatcher() override {
    stop();
    ::close(wake_);
  }
  void stop() override {
    if (!thread_.joinable()) return;
    std::uint64_t one = 1;
    if (::write(wake_, &one, sizeof one) < 0) spdlog::warn("watch: cannot wake the watcher");
    thread_.join();
    for (auto& j : jails_) {
      j->follower->save_positions();
      j->jail.save(j->failures_file);
    }
  }
  std::vector<std::string> jails() const override {
    std::vector<std::string> out;
    for (const auto& j : jails_) out.push_back(j->config.name);
    return out;
  }
  std::vector<JailFigures> figures() const override {
    std::vector<JailFigures> out;
    for (const auto& j : jails_)
      out.push_back({j->config.name, j->lines.load(std::memory_order_acquire),
                     j->matches.load(std::memory_order_relaxed),
                     j->bans.load(std::memory_order_relaxed)});
    return out;
  }

 private:
  void run() {
    std::vector<pollfd> fds;
    fds.push_back({wake_, POLLIN, 0});
    for (auto& j : jails_) fds.push_back({j->follower->fd(), POLLIN, 0});
    for (;;) {
      bool more = false;
      for (auto& j : jails_) {
        more |= j->follower->scan();
        j->jail.save(j->failures_file);  // with the positions: a line read is counted for good
      }
      // inotify wakes us at once; the timeout is the safety net for lost or merged events.
      // With a backlog left, only a look at the stop request before the next scan.
      int n = ::poll(fds.data(), fds.size(), more ? 0 : 1000);
      if (n > 0 && (fds[0].revents & POLLIN)) return;
    }
  }

  std::vector<std::unique_ptr<RunningJail>> jails_;
  int wake_;
  std::thread thread_;
};

}  // namespace

FilterDefinition jail_filter(const JailConfig& jail) {
  FilterDefinition def;
  if (!jail.filter.empty()) {
    def = load_filter(jail.filter, {}, jail.filter_dir);
  } else {
    def.source = "jail " + jail.name;
  }
  for (const auto& r : jail.failregex) def.failregex.push_back(r);
  for (const auto& r : jail.ignoreregex) def.ignoreregex.push_back(r);
  if (!jail.datepattern.empty()) def.datepattern = jail.datepattern;
  return def;
}

std::unique_ptr<Watcher> start(const std::vector<JailConfig>& jails, WatcherOptions options) {
  std::vector<std::unique_ptr<RunningJail>> running;
  if (!options.state_dir.empty()) std::filesystem::create_directories(options.state_dir);
  for (const auto& c : jails) {
    if (!c.enabled) continue;
    try {
      auto j = std::make_unique<RunningJail>(c, jail_filter(c), options.sink, options.history,
                                             options.active);
      FollowerOptions fo;
      if (!options.state_dir.empty()) {
        fo.state_file = options.state_dir + "/" + c.name + ".pos";
        j->failures_file = options.state_dir + "/" + c.name + ".failures";
        j->jail.load(j->failures_file);
      }
      auto* raw = j.get();
      j->follower = std::make_unique<Follower>(
          c.logpath, fo, [raw](const std::string&, std::string_view line) { raw->on_line(line); });
      spdlog::info("jail {}: following {} ({} file(s) now), maxretry {} in {}s, bantime {}s",
                   c.name, c.logpath.front(), j->follower->followed().size(), c.maxretry,
                   c.findtime.count(), c.bantime.count());
      running.push_back(std::move(j));
    } catch (const std::exception& e) {
      throw std::runtime_error("jail '" + c.name + "' (" + c.where + "): " + e.what());
    }
  }
  if (running.empty()) return nullptr;
  return std::make_unique<ThreadWatcher>(std::move(running));
}

std::unique_ptr<Watcher> start_from_config(const toml::table& raw, BanSink sink,
                                           BanHistory history, BanActive active) {
  auto jails = parse_jails(raw);
  auto watch = parse_watch_config(raw);
  return start(jails, WatcherOptions{watch.state_dir, std::move(sink), std::move(history),
                                     std::move(active)});
}

}  // namespace snigate::watch
