// The remote ban channel end to end on 127.0.8.1: RemoteBanClient (what snigate-watch uses)
// against RemoteBanServer with fake ban handlers. A valid token bans, a bad token, a replay,
// a peer outside `allow` and a flooding peer are refused, and `force` never travels.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include "config/endpoint.h"
#include "control/remote_client.h"
#include "control/remote_protocol.h"
#include "control/remote_server.h"

namespace snigate::control {
namespace {

using namespace std::chrono_literals;
using boost::asio::ip::tcp;
using Status = RemoteReply::Status;

const std::string kToken = "remote-test-token-0123456789abcdef";

bans::BanRequest request(const char* prefix) {
  bans::BanRequest r;
  r.prefix = *net::Prefix::parse(prefix);
  r.duration = 600s;
  r.reason = "5 failures";
  r.jail = "nginx-http-auth";
  r.sample = "127.0.8.9 - - \"GET / HTTP/1.1\" 401";
  return r;
}

class RemoteServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg_.enabled = true;
    cfg_.listen = {boost::asio::ip::make_address("127.0.8.1"), 0};
    cfg_.tokens = {kToken};
    cfg_.token_names = {"tokens[0]"};
    cfg_.rate = 100;
    cfg_.burst = 100;
    handlers_.ban = [this](const bans::BanRequest& r) {
      std::lock_guard lock(mu_);
      bans_.push_back(r);
      bans::BanOutcome o;
      o.ok = true;
      o.entry.prefix = r.prefix;
      if (r.duration) o.entry.expires = bans::Clock::now() + *r.duration;
      return o;
    };
    handlers_.unban = [this](const net::Prefix& p) {
      std::lock_guard lock(mu_);
      unbans_.push_back(p);
      return true;
    };
  }
  void TearDown() override {
    if (thread_.joinable()) {
      io_.stop();
      thread_.join();
    }
    server_.reset();
  }
  void start() {
    std::string error;
    server_ = RemoteBanServer::start(io_, cfg_, handlers_, error);
    ASSERT_TRUE(server_) << error;
    endpoint_ = config::format_endpoint(server_->local_endpoint());
    thread_ = std::thread([this] { io_.run(); });
  }
  // Sends raw lines on one connection and returns the reply lines.
  std::vector<nlohmann::json> raw(const std::vector<std::string>& lines) {
    boost::asio::io_context io;
    tcp::socket socket(io);
    socket.connect(server_->local_endpoint());
    std::vector<nlohmann::json> replies;
    std::string buffer;
    for (const auto& l : lines) {
      boost::asio::write(socket, boost::asio::buffer(l));
      auto n = boost::asio::read_until(socket, boost::asio::dynamic_buffer(buffer), '\n');
      replies.push_back(nlohmann::json::parse(buffer.substr(0, n - 1)));
      buffer.erase(0, n);
    }
    return replies;
  }

  RemoteBanConfig cfg_;
  ControlHandlers handlers_;
  boost::asio::io_context io_;
  std::unique_ptr<RemoteBanServer> server_;
  std::thread thread_;
  std::string endpoint_;
  std::mutex mu_;
  std::vector<bans::BanRequest> bans_;
  std::vector<net::Prefix> unbans_;
};

TEST_F(RemoteServerTest, ValidTokenBansWithRemoteSourceAndNoForce) {
  start();
  auto req = request("127.0.8.9");
  req.force = true;
  req.source = "spoofed";
  auto reply = RemoteBanClient(endpoint_, kToken).send(req);
  ASSERT_EQ(reply.status, Status::Ok) << reply.message;
  EXPECT_NE(reply.message.find("banned 127.0.8.9 for 10m"), std::string::npos) << reply.message;
  std::lock_guard lock(mu_);
  ASSERT_EQ(bans_.size(), 1u);
  EXPECT_EQ(bans_[0].source.rfind("remote:127.", 0), 0u) << bans_[0].source;
  EXPECT_FALSE(bans_[0].force);
  EXPECT_EQ(bans_[0].jail, "nginx-http-auth");
  EXPECT_EQ(bans_[0].sample, req.sample);
  EXPECT_EQ(bans_[0].duration, 600s);
}

TEST_F(RemoteServerTest, UnbanWithValidToken) {
  start();
  auto reply = RemoteBanClient(endpoint_, kToken).unban(*net::Prefix::parse("127.0.8.0/24"));
  ASSERT_EQ(reply.status, Status::Ok) << reply.message;
  std::lock_guard lock(mu_);
  ASSERT_EQ(unbans_.size(), 1u);
  EXPECT_EQ(unbans_[0].str(), "127.0.8.0/24");
}

TEST_F(RemoteServerTest, BadTokenIsRefusedForGood) {
  start();
  auto reply = RemoteBanClient(endpoint_, "not-the-token-0123456789").send(request("127.0.8.9"));
  EXPECT_EQ(reply.status, Status::Refused);
  EXPECT_TRUE(reply.channel);  // the watcher holds such a ban until the token is fixed
  EXPECT_NE(reply.message.find("bad token"), std::string::npos) << reply.message;
  std::lock_guard lock(mu_);
  EXPECT_TRUE(bans_.empty());
}

TEST_F(RemoteServerTest, ReplayedRequestIsRefused) {
  start();
  nlohmann::json body{{"cmd", "ban"}, {"prefix", "127.0.8.9"}};
  auto line = sign_remote_request(body, kToken, WallClock::now(), random_nonce());
  auto replies = raw({line, line});
  EXPECT_TRUE(replies[0]["ok"].get<bool>()) << replies[0];
  EXPECT_FALSE(replies[1]["ok"].get<bool>());
  EXPECT_NE(replies[1]["error"].get<std::string>().find("replayed"), std::string::npos);
  std::lock_guard lock(mu_);
  EXPECT_EQ(bans_.size(), 1u);
}

// A request captured on the wire and replayed after the edge restarted (its nonce memory
// gone) is refused.
TEST_F(RemoteServerTest, ReplayAcrossARestartIsRefused) {
  nlohmann::json body{{"cmd", "unban"}, {"prefix", "127.0.8.9"}};
  auto line = sign_remote_request(body, kToken, WallClock::now() - 2s, random_nonce());
  start();
  EXPECT_FALSE(raw({line})[0]["ok"].get<bool>());  // signed before this server started
  TearDown();
  io_.restart();
  start();  // the "restarted" edge
  auto replayed = raw({line})[0];
  EXPECT_FALSE(replayed["ok"].get<bool>());
  EXPECT_NE(replayed["error"].get<std::string>().find("signed before this edge started"),
            std::string::npos)
      << replayed;
  std::lock_guard lock(mu_);
  EXPECT_TRUE(unbans_.empty());
}

TEST_F(RemoteServerTest, StaleTimestampIsRefused) {
  start();
  nlohmann::json body{{"cmd", "ban"}, {"prefix", "127.0.8.9"}};
  auto replies = raw({sign_remote_request(body, kToken, WallClock::now() - 5min, random_nonce())});
  EXPECT_FALSE(replies[0]["ok"].get<bool>());
  EXPECT_NE(replies[0]["error"].get<std::string>().find("clock"), std::string::npos);
}

TEST_F(RemoteServerTest, FloodingPeerIsRateLimited) {
  cfg_.rate = 1;
  cfg_.burst = 2;
  start();
  RemoteBanClient client(endpoint_, kToken);
  EXPECT_TRUE(client.send(request("127.0.8.9")).ok());
  EXPECT_TRUE(client.send(request("127.0.8.10")).ok());
  auto third = client.send(request("127.0.8.11"));
  EXPECT_EQ(third.status, Status::Retry);
  EXPECT_NE(third.message.find("rate limited"), std::string::npos) << third.message;
  std::lock_guard lock(mu_);
  EXPECT_EQ(bans_.size(), 2u);
}

TEST_F(RemoteServerTest, PeerOutsideAllowIsRefused) {
  cfg_.allow = {*net::Prefix::parse("192.0.2.0/24")};
  start();
  auto reply = RemoteBanClient(endpoint_, kToken).send(request("127.0.8.9"));
  EXPECT_EQ(reply.status, Status::Refused);
  EXPECT_NE(reply.message.find("allow"), std::string::npos) << reply.message;
}

// A valid token is no licence to ban half the Internet: prefixes wider than the configured
// width are refused for good, per family.
TEST_F(RemoteServerTest, WidePrefixesAreRefused) {
  cfg_.min_prefix_v4 = 16;
  cfg_.min_prefix_v6 = 48;
  start();
  RemoteBanClient client(endpoint_, kToken);
  for (const char* wide : {"0.0.0.0/1", "10.0.0.0/15", "::/1", "2001:db8::/47"}) {
    auto reply = client.send(request(wide));
    EXPECT_EQ(reply.status, Status::Refused) << wide;
    EXPECT_FALSE(reply.channel);  // refused for the ban itself: not worth sending again
    EXPECT_NE(reply.message.find("the widest this edge takes"), std::string::npos) << reply.message;
  }
  EXPECT_TRUE(client.send(request("10.0.0.0/16")).ok());
  EXPECT_TRUE(client.send(request("2001:db8::/48")).ok());
  std::lock_guard lock(mu_);
  ASSERT_EQ(bans_.size(), 2u);
  EXPECT_EQ(bans_[0].prefix.str(), "10.0.0.0/16");
}

// A token holder's body with a non-string "cmd" is refused, and the server goes on.
TEST_F(RemoteServerTest, CommandOfTheWrongTypeIsRefusedAndTheServerLives) {
  start();
  auto replies = raw({sign_remote_request(nlohmann::json{{"cmd", 5}}, kToken, WallClock::now(),
                                          random_nonce()),
                      sign_remote_request(nlohmann::json{{"cmd", "ban"}, {"prefix", "127.0.8.9"}},
                                          kToken, WallClock::now(), random_nonce())});
  EXPECT_FALSE(replies[0]["ok"].get<bool>());
  EXPECT_NE(replies[0]["error"].get<std::string>().find("unknown command"), std::string::npos);
  EXPECT_TRUE(replies[1]["ok"].get<bool>()) << replies[1];
}

TEST(RemoteBanClient, UnreachableEdgeMeansRetry) {
  // Nothing listens on port 1 of this helper's block.
  auto reply = RemoteBanClient("127.0.8.1:1", kToken, 2s).send(request("127.0.8.9"));
  EXPECT_EQ(reply.status, Status::Retry);
  EXPECT_NE(reply.message.find("refused"), std::string::npos) << reply.message;
}

}  // namespace
}  // namespace snigate::control
