// The control socket as snigatectl meets it: created with its parent directory and mode
// 0600, a stale socket from a crashed daemon replaced, a live one (another daemon) refused,
// requests answered in order on one connection, and the file removed on shutdown.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

#include "control/control_client.h"
#include "control/control_server.h"
#include "control/protocol.h"

namespace snigate::control {
namespace {

using nlohmann::json;

class ControlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sg-ctl-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/run/snigate/control.sock";
    handlers_.stats = [] { return json{{"connections", {{"accepted", 3}}}}; };
    handlers_.reload = [] { return std::string("snigate.toml:4:1: unknown key 'lisen'"); };
  }
  void TearDown() override {
    stop();
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<ControlServer> start(std::string& error) {
    return ControlServer::start(io_, path_, handlers_, error);
  }
  void run() {
    guard_.emplace(io_.get_executor());
    thread_ = std::thread([this] { io_.run(); });
  }
  void stop() {
    if (!thread_.joinable()) return;
    guard_.reset();
    io_.stop();
    thread_.join();
  }

  std::string dir_, path_;
  ControlHandlers handlers_;
  std::unique_ptr<ControlServer> server_;  // dropped after the io thread stops
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  std::thread thread_;
};

TEST_F(ControlServerTest, CreatesParentAndSocketWithMode0600AndAnswers) {
  std::string error;
  server_ = start(error);
  ASSERT_TRUE(server_) << error;
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(std::filesystem::directory_iterator(dir_ + "/run/snigate")->path(), path_);  // no temp left
  run();
  auto reply = ControlClient(path_).request(json{{"cmd", "stats"}}, error);
  ASSERT_TRUE(reply) << error;
  EXPECT_EQ((*reply)["stats"]["connections"]["accepted"], 3);
  auto reload = ControlClient(path_).request(json{{"cmd", "reload"}}, error);
  ASSERT_TRUE(reload) << error;
  EXPECT_FALSE((*reload)["ok"].get<bool>());
  EXPECT_NE((*reload)["error"].get<std::string>().find("snigate.toml:4:1"), std::string::npos);
  stop();
  server_.reset();
  EXPECT_FALSE(std::filesystem::exists(path_));  // removed on shutdown
}

TEST_F(ControlServerTest, ReplacesAStaleSocket) {
  std::filesystem::create_directories(dir_ + "/run/snigate");
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);  // a crashed daemon leaves the file behind, nobody listening
  std::string error;
  server_ = start(error);
  ASSERT_TRUE(server_) << error;
  run();
  EXPECT_TRUE(ControlClient(path_).request(json{{"cmd", "stats"}}, error)) << error;
}

TEST_F(ControlServerTest, RefusesWhenAnotherDaemonListens) {
  std::string error;
  server_ = start(error);
  ASSERT_TRUE(server_) << error;
  auto second = start(error);
  EXPECT_FALSE(second);
  EXPECT_NE(error.find("another process"), std::string::npos) << error;
  EXPECT_TRUE(std::filesystem::exists(path_));  // the first one's socket is untouched
}

TEST_F(ControlServerTest, RefusesAPathThatIsNotASocket) {
  std::filesystem::create_directories(dir_ + "/run/snigate");
  std::ofstream(path_) << "precious";
  std::string error;
  EXPECT_FALSE(start(error));
  EXPECT_NE(error.find("is not a socket"), std::string::npos) << error;
  std::ifstream in(path_);
  std::string text;
  in >> text;
  EXPECT_EQ(text, "precious");
}

TEST_F(ControlServerTest, SeveralRequestsOnOneConnectionAndOversizedLines) {
  std::string error;
  server_ = start(error);
  ASSERT_TRUE(server_) << error;
  run();
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out = "{\"cmd\":\"stats\"}\n\n{\"cmd\":\"nope\"}\n" + std::string(kMaxLine + 10, 'x');
  ASSERT_EQ(::send(fd, out.data(), out.size(), MSG_NOSIGNAL), static_cast<ssize_t>(out.size()));
  std::string in;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) in.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  std::vector<json> replies;
  for (std::size_t at = 0, nl; (nl = in.find('\n', at)) != std::string::npos; at = nl + 1)
    replies.push_back(json::parse(in.substr(at, nl - at)));
  ASSERT_EQ(replies.size(), 3u) << in;
  EXPECT_TRUE(replies[0]["ok"].get<bool>());
  EXPECT_NE(replies[1]["error"].get<std::string>().find("unknown command 'nope'"), std::string::npos);
  EXPECT_NE(replies[2]["error"].get<std::string>().find("longer than"), std::string::npos);
}

TEST(ControlClient, UnreachableDaemonIsExplained) {
  std::string error;
  EXPECT_FALSE(ControlClient("/tmp/sg-ctl-none/control.sock").request(json{{"cmd", "stats"}}, error));
  EXPECT_NE(error.find("cannot reach snigated at /tmp/sg-ctl-none/control.sock"), std::string::npos)
      << error;
  EXPECT_NE(error.find("--socket"), std::string::npos);
}

}  // namespace
}  // namespace snigate::control
