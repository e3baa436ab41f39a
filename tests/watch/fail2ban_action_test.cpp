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

#include <boost/asio/io_context.hpp>

#include "bans/ban_manager.h"
#include "bans/fake_ban_map.h"
#include "control/control_server.h"

namespace snigate::watch {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const char* kDriver = R"(
import sys
sys.path.insert(0, '/usr/lib/python3/dist-packages')
from fail2ban.client.actionreader import ActionReader
from fail2ban.server.action import CommandAction
basedir, socket, ctl = sys.argv[1:4]
reader = ActionReader('snigate', 'nginx-auth', {'socket': socket, 'snigatectl': ctl},
                      basedir=basedir)
assert reader.read(), 'fail2ban cannot read action.d/snigate.conf'
reader.getOptions({})
action = CommandAction(None, 'snigate')
for key, value in reader.convert()[1][4]:
    setattr(action, key, value)
info = {'ip': '192.0.2.5', 'bantime': 600, 'failures': 5}
# fail2ban unbans only what this action banned: one process, the test says when to unban.
action.ban(info)
print('banned', flush=True)
sys.stdin.readline()
action.unban(info)
)";

TEST(Fail2banAction, BansAndUnbansThroughSnigatectl) {
  ASSERT_TRUE(fs::exists("/usr/lib/python3/dist-packages/fail2ban")) << "install fail2ban";
  fs::path dir = fs::temp_directory_path() / ("snigate-f2b-action-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);

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
  std::thread loop([&] {
    auto guard = boost::asio::make_work_guard(io);
    io.run();
  });

  auto driver = dir / "driver.py";
  std::ofstream(driver) << kDriver;
  std::string cmd = "python3 '" + driver.string() + "' '" + SNIGATE_SOURCE_DIR +
                    "/config/fail2ban' '" + socket + "' '" + SNIGATECTL_BIN + "' > '" +
                    (dir / "driver.out").string() + "'";
  FILE* fail2ban = ::popen(cmd.c_str(), "w");
  ASSERT_TRUE(fail2ban);
  auto printed = [&] {
    std::ifstream in(dir / "driver.out");
    std::string all((std::istreambuf_iterator<char>(in)), {});
    return all.find("banned") != std::string::npos;
  };
  for (int i = 0; i < 200 && !printed(); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(printed()) << "fail2ban's actionban did not run";

  auto client = boost::asio::ip::make_address("192.0.2.5");
  EXPECT_TRUE(manager->banned(client));
  auto list = manager->list();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].reason, "fail2ban nginx-auth");
  EXPECT_EQ(list[0].source, "fail2ban");
  EXPECT_EQ(list[0].jail, "nginx-auth");
  ASSERT_TRUE(list[0].expires);
  auto left = *list[0].expires - bans::Clock::now();
  EXPECT_GT(left, 590s);
  EXPECT_LE(left, 600s);

  std::fputs("unban\n", fail2ban);
  EXPECT_EQ(::pclose(fail2ban), 0);
  EXPECT_FALSE(manager->banned(client));

  io.stop();
  loop.join();
  server.reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace snigate::watch
