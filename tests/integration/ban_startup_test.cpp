// Bans hold from the first accepted connection: a banned client that knocks again and again
// while snigated starts (and loads a large ban store) is never served, not even once.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "bans/ban_store.h"
#include "integration/harness.h"

namespace snigate::itest {
namespace {

// A free port on 127.0.3.1 for a listener the test must reach before the daemon logs it.
std::uint16_t free_port() {
  RawServer probe("127.0.3.1", [](int) {});
  return probe.port();
}

// The store a daemon restarted after a busy day finds: the client's ban and `filler` others,
// so loading it takes a while.
void fill_store(const fs::path& path, const std::string& banned, int filler) {
  std::string error;
  auto store = bans::BanStore::open(path.string(), error);
  ASSERT_TRUE(store) << error;
  bans::BanEntry entry;
  entry.prefix = *net::Prefix::parse(banned);
  entry.created = bans::Clock::now();
  entry.reason = "startup test";
  entry.source = "ctl";
  ASSERT_TRUE(store->add(entry, error)) << error;
  store.reset();
  const auto sql = fmt::format(
      "BEGIN; INSERT INTO history(prefix, created_ms) WITH RECURSIVE n(i) AS (SELECT 0 UNION "
      "ALL SELECT i + 1 FROM n WHERE i < {}) SELECT '10.' || (i >> 16) || '.' || "
      "((i >> 8) & 255) || '.' || (i & 255), 0 FROM n; INSERT INTO bans(prefix, history_id) "
      "SELECT prefix, id FROM history WHERE prefix LIKE '10.%'; COMMIT;",
      filler - 1);
  RunResult r = run({"sqlite3", path.string(), sql});
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

// One knock: true when the backend's answer came back through the daemon.
bool served(std::uint16_t port, const std::string& from) {
  int fd;
  try {
    fd = connect_to("127.0.3.1", port, from, 1s);
  } catch (const std::exception&) {
    return false;  // nothing listens yet
  }
  send_all(fd, "GET / HTTP/1.1\r\nHost: s.test\r\n\r\n");
  bool answered = recv_until_eof(fd, 64).find("served") != std::string::npos;
  close(fd);
  return answered;
}

TEST(BanStartup, BannedClientIsNeverServedWhileTheDaemonStarts) {
  TempDir dir;
  std::atomic<int> answers{0};
  RawServer backend("127.0.3.1", [&answers](int fd) {
    std::string head;
    char c;
    while (head.find("\r\n\r\n") == std::string::npos && recv(fd, &c, 1, 0) == 1) head += c;
    ++answers;
    send_all(fd, "served");
  });
  fill_store(dir / "bans.db", "127.0.3.50", 200000);
  const std::uint16_t port = free_port();
  const std::string toml = fmt::format(
      "[daemon]\nworkers = 1\naccess_log = \"{}\"\ncontrol_socket = \"{}\"\n"
      "[[listener]]\nname = \"http\"\nlisten = \"127.0.3.1:{}\"\nprotocol = \"http\"\n"
      "table = \"t\"\n[table.t]\ndefault = \"b\"\n[backend.b]\nservers = [\"127.0.3.1:{}\"]\n"
      "[bans]\nstore = \"{}\"\npin_dir = \"{}\"\n",
      (dir / "access.log").string(), (dir / "control.sock").string(), port, backend.port(),
      (dir / "bans.db").string(), (dir / "pins").string());
  write_file(dir / "snigated.toml", toml);
  Process daemon({SNIGATED_PATH, "-c", (dir / "snigated.toml").string()}, dir / "snigated.log");

  // Knocks every 5 ms from the banned address until the daemon is ready, then a little longer.
  int knocks = 0, banned_served = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  std::optional<std::chrono::steady_clock::time_point> ready_at;
  while (std::chrono::steady_clock::now() < deadline && daemon.alive()) {
    if (!ready_at && daemon.log().find("snigated ready") != std::string::npos)
      ready_at = std::chrono::steady_clock::now();
    if (ready_at && std::chrono::steady_clock::now() > *ready_at + 300ms) break;
    ++knocks;
    if (served(port, "127.0.3.50")) ++banned_served;
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_TRUE(ready_at) << daemon.log();
  EXPECT_EQ(banned_served, 0) << "of " << knocks << " knocks\n" << daemon.log();
  // The listener does serve, just not the banned client.
  EXPECT_TRUE(served(port, "127.0.3.51")) << daemon.log();
  EXPECT_EQ(answers.load(), 1);
}

}  // namespace
}  // namespace snigate::itest
