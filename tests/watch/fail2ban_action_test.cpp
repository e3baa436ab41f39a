// config/fail2ban/action.d/snigate.conf as fail2ban itself runs it: fail2ban's ActionReader
// loads the file (with a jail's arguments), fail2ban's CommandAction executes actionban and
// actionunban, and the real snigatectl they call bans and unbans in a BanManager (fake BPF
// map) behind a real control socket.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <utility>

#include <boost/asio/io_context.hpp>

#include "bans/ban_manager.h"
#include "bans/fake_ban_map.h"
#include "control/control_server.h"

namespace snigate::watch {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

const char* kDriver = R"(
import sys
sys.path.insert(0, '/usr/lib/python3/dist-packages')
from fail2ban.client.actionreader import ActionReader
from fail2ban.server.action import CommandAction
basedir, socket, ctl, bantime = sys.argv[1:5]
reader = ActionReader('snigate', 'nginx-auth', {'socket': socket, 'snigatectl': ctl},
                      basedir=basedir)
assert reader.read(), 'fail2ban cannot read action.d/snigate.conf'
reader.getOptions({})
action = CommandAction(None, 'snigate')
for key, value in reader.convert()[1][4]:
    setattr(action, key, value)
info = {'ip': '192.0.2.5', 'bantime': float(bantime) if '.' in bantime else int(bantime),
        'failures': 5}
# fail2ban unbans only what this action banned: one process, the test says when to unban.
action.ban(info)
print('banned', flush=True)
sys.stdin.readline()
action.unban(info)
)";

struct RemovedAtEnd {
  ~RemovedAtEnd() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  fs::path dir;
};

// The control server's thread, stopped and joined however the test ends.
struct ServerLoop {
  explicit ServerLoop(boost::asio::io_context& io)
      : io(io), thread([&io] {
          auto guard = boost::asio::make_work_guard(io);
          io.run();
        }) {}
  ~ServerLoop() {
    io.stop();
    thread.join();
  }
  boost::asio::io_context& io;
  std::thread thread;
};

// The fail2ban driver's stdin: however the test ends, the driver is told to unban and
// reaped, so nothing outlives the test.
struct Driver {
  explicit Driver(FILE* pipe) : pipe(pipe) {}
  ~Driver() { unban(); }
  // Tells the driver to run actionunban; its exit status.
  int unban() {
    if (!pipe) return -1;
    std::fputs("unban\n", pipe);
    return ::pclose(std::exchange(pipe, nullptr));
  }
  FILE* pipe;
};

// Runs actionban for 192.0.2.5 with fail2ban's `bantime` (seconds, maybe a float; -1:
// permanent), checks the ban through `check`, then actionunban.
template <class Check>
void ban_and_unban(const std::string& bantime, Check check) {
  ASSERT_TRUE(fs::exists("/usr/lib/python3/dist-packages/fail2ban")) << "install fail2ban";
  fs::path dir = fs::temp_directory_path() / ("snigate-f2b-action-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  RemovedAtEnd scratch{dir};

  bans::BansConfig cfg;
  cfg.sweep_interval = 0s;
  std::string error;
  auto store = bans::BanStore::open((dir / "bans.db").string(), error);
  ASSERT_TRUE(store) << error;
  auto manager = bans::BanManager::create(cfg, std::make_unique<bans::FakeBanMap>(), std::move(store),
                                          std::make_shared<bans::SystemBanClock>(), nullptr, error);
  ASSERT_TRUE(manager) << error;

  boost::asio::io_context io;
  control::ControlHandlers h;
  h.ban = [&](const bans::BanRequest& r) { return manager->ban(r); };
  h.unban = [&](const net::Prefix& p) { return manager->unban(p); };
  h.list_bans = [&] { return manager->list(); };
  auto socket = (dir / "control.sock").string();
  auto server = control::ControlServer::start(io, socket, h, error);
  ASSERT_TRUE(server) << error;
  ServerLoop loop(io);

  auto driver_py = dir / "driver.py";
  std::ofstream(driver_py) << kDriver;
  std::string cmd = "python3 '" + driver_py.string() + "' '" + SNIGATE_SOURCE_DIR +
                    "/config/fail2ban' '" + socket + "' '" + SNIGATECTL_BIN + "' " +
                    bantime + " > '" + (dir / "driver.out").string() + "' 2> '" + (dir / "driver.err").string() + "'";
  Driver driver(::popen(cmd.c_str(), "w"));
  ASSERT_TRUE(driver.pipe);
  auto printed = [&] {
    std::ifstream in(dir / "driver.out");
    std::string all((std::istreambuf_iterator<char>(in)), {});
    return all.find("banned") != std::string::npos;
  };
  for (int i = 0; i < 200 && !printed(); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(printed()) << "fail2ban's actionban did not run: " << slurp(dir / "driver.err");
  auto client = boost::asio::ip::make_address("192.0.2.5");
  EXPECT_TRUE(manager->banned(client));
  auto list = manager->list();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].reason, "fail2ban nginx-auth");
  EXPECT_EQ(list[0].source, "fail2ban");
  EXPECT_EQ(list[0].jail, "nginx-auth");
  check(list[0]);
  EXPECT_EQ(driver.unban(), 0) << slurp(dir / "driver.err");
  EXPECT_FALSE(manager->banned(client));
}

// The ban expires `bantime` after it was made, which was at most 10 s ago.
auto expires_in(std::chrono::seconds bantime) {
  return [bantime](const bans::BanEntry& ban) {
    ASSERT_TRUE(ban.expires);
    auto left = *ban.expires - bans::Clock::now();
    EXPECT_GT(left, bantime - 10s);
    EXPECT_LE(left, bantime);
  };
}

TEST(Fail2banAction, BansForTheJailsBantimeAndUnbansThroughSnigatectl) {
  ban_and_unban("600", expires_in(600s));
}

// fail2ban's bantime = -1 means for ever: a permanent ban, not "--for -1s".
TEST(Fail2banAction, NegativeBantimeIsAPermanentBan) {
  ban_and_unban("-1", [](const bans::BanEntry& ban) { EXPECT_FALSE(ban.expires); });
}

// bantime = 1.5h reaches the action as 5400.0.
TEST(Fail2banAction, FloatBantimeIsWholeSeconds) {
  ban_and_unban("5400.0", expires_in(5400s));
}

}  // namespace
}  // namespace snigate::watch
