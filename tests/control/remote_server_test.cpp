// The remote ban channel end to end on 127.0.8.1: RemoteBanClient (what snigate-watch uses)
// against RemoteBanServer with fake ban handlers. A valid token bans, a bad token, a replay,
// a peer outside `allow` and a flooding peer are refused, and `force` never travels.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
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
      bans::BanOutcome o;
      if (r.prefix.str() == "127.0.8.66") {
        o.error = "ban 127.0.8.66 overlaps 127.0.8.64/30 from [bans] ignore";
        return o;
      }
      bans_.push_back(r);
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

// Many bans in one call: each gets its own answer, in order, and each keeps its id.
TEST_F(RemoteServerTest, BatchIsAnsweredBanByBan) {
  start();
  std::vector<bans::BanRequest> batch;
  for (const char* p : {"127.0.8.20", "127.0.8.66", "10.0.0.0/8", "127.0.8.21"}) {
    batch.push_back(request(p));
    batch.back().id = std::string("id-") + p;
  }
  auto replies = RemoteBanClient(endpoint_, kToken).send(batch);
  ASSERT_EQ(replies.size(), 4u);
  EXPECT_EQ(replies[0].status, Status::Ok) << replies[0].message;
  EXPECT_EQ(replies[1].status, Status::Refused);  // the edge's ignore list
  EXPECT_NE(replies[1].message.find("ignore"), std::string::npos) << replies[1].message;
  EXPECT_EQ(replies[2].status, Status::Refused);  // wider than min_prefix_v4
  EXPECT_NE(replies[2].message.find("the widest this edge takes"), std::string::npos);
  EXPECT_EQ(replies[3].status, Status::Ok) << replies[3].message;
  EXPECT_NE(replies[3].message.find("banned 127.0.8.21"), std::string::npos) << replies[3].message;
  std::lock_guard lock(mu_);
  ASSERT_EQ(bans_.size(), 2u);
  EXPECT_EQ(bans_[0].id, "id-127.0.8.20");
  EXPECT_EQ(bans_[1].id, "id-127.0.8.21");
}

// 1,200 bans in one call go as several requests (at most kRemoteMaxBatch each) on one
// connection, and every one is answered and made, while the request rate stays low.
TEST_F(RemoteServerTest, LargeBatchGoesAsFewRequests) {
  cfg_.rate = 1;
  cfg_.burst = 4;  // 1,200 requests would be refused; a short first one and 3 batches are not
  cfg_.ban_burst = 2000;
  start();
  std::vector<bans::BanRequest> batch;
  for (int i = 0; i < 1200; ++i)
    batch.push_back(request(("10.9." + std::to_string(i / 250) + "." + std::to_string(i % 250)).c_str()));
  auto replies = RemoteBanClient(endpoint_, kToken).send(batch);
  ASSERT_EQ(replies.size(), 1200u);
  for (const auto& r : replies) ASSERT_EQ(r.status, Status::Ok) << r.message;
  std::lock_guard lock(mu_);
  EXPECT_EQ(bans_.size(), 1200u);
}

// Samples made of quotes double in size on the wire (escaped in the ban, then in the body):
// a full batch of them still fits the edge's line limit.
TEST_F(RemoteServerTest, BatchOfQuoteHeavySamplesFitsTheLine) {
  start();
  std::vector<bans::BanRequest> batch;
  for (int i = 0; i < 500; ++i) {
    batch.push_back(request(("10.8." + std::to_string(i / 250) + "." + std::to_string(i % 250)).c_str()));
    batch.back().sample = std::string(1024, '"');
  }
  auto replies = RemoteBanClient(endpoint_, kToken).send(batch);
  ASSERT_EQ(replies.size(), 500u);
  for (const auto& r : replies) ASSERT_EQ(r.status, Status::Ok) << r.message;
}

// A watcher ahead of its edge: a v1 edge refuses a line over 64 KiB for good ("too long"),
// which would drop the bans, and refuses any v2 request for the channel's sake. The first
// request on a connection stays under 64 KiB, so the batch is held, not dropped.
TEST(RemoteBanClient, BansSentToAVersionOneEdgeAreHeldNotDropped) {
  boost::asio::io_context io;
  tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.8.1"), 0});
  std::thread old_edge([&] {
    tcp::socket socket(io);
    acceptor.accept(socket);
    std::string buffer;
    boost::system::error_code ec;
    boost::asio::read_until(socket, boost::asio::dynamic_buffer(buffer, 64 * 1024), '\n', ec);
    const char* reply =
        ec ? R"j({"ok":false,"error":"request too long","retry":false})j" "\n"
           : R"j({"ok":false,"error":"unsupported protocol version (this edge speaks v1)",)j"
             R"j("retry":false,"channel":true})j" "\n";
    boost::asio::write(socket, boost::asio::buffer(std::string(reply)), ec);
  });
  std::vector<bans::BanRequest> batch;
  for (int i = 0; i < 500; ++i) {
    batch.push_back(request(("10.7." + std::to_string(i / 250) + "." + std::to_string(i % 250)).c_str()));
    batch.back().sample = std::string(300, 'x');
  }
  auto replies = RemoteBanClient(config::format_endpoint(acceptor.local_endpoint()), kToken).send(batch);
  old_edge.join();
  ASSERT_EQ(replies.size(), 500u);
  for (const auto& r : replies) {
    ASSERT_EQ(r.status, Status::Refused) << r.message;
    ASSERT_TRUE(r.channel) << r.message;
  }
}

// The per-ban limit: a batch past the peer's ban bucket has its first bans made and the rest
// answered "rate limited", retryable, without being tried.
TEST_F(RemoteServerTest, BansPastTheBanRateAreAnsweredRetry) {
  cfg_.ban_rate = 1;
  cfg_.ban_burst = 3;
  start();
  std::vector<bans::BanRequest> batch;
  for (const char* p : {"127.0.8.30", "127.0.8.31", "127.0.8.32", "127.0.8.33", "127.0.8.34"})
    batch.push_back(request(p));
  auto replies = RemoteBanClient(endpoint_, kToken).send(batch);
  ASSERT_EQ(replies.size(), 5u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(replies[i].status, Status::Ok) << i;
  for (int i = 3; i < 5; ++i) {
    EXPECT_EQ(replies[i].status, Status::Retry) << i;
    EXPECT_NE(replies[i].message.find("ban_rate"), std::string::npos) << replies[i].message;
  }
  std::lock_guard lock(mu_);
  EXPECT_EQ(bans_.size(), 3u);
}

// A request signed for another edge that shares the token is refused (for the channel's
// sake: the watcher holds its bans until its [edge] name is fixed), one for this edge taken.
TEST_F(RemoteServerTest, RequestSignedForAnotherEdgeIsRefused) {
  cfg_.name = "edge-b";
  start();
  auto other = RemoteBanClient(endpoint_, kToken, 5s, "edge-a").send(request("127.0.8.40"));
  EXPECT_EQ(other.status, Status::Refused);
  EXPECT_TRUE(other.channel);
  EXPECT_NE(other.message.find("signed for edge \"edge-a\""), std::string::npos) << other.message;
  EXPECT_TRUE(RemoteBanClient(endpoint_, kToken, 5s, "edge-b").send(request("127.0.8.41")).ok());
  std::lock_guard lock(mu_);
  ASSERT_EQ(bans_.size(), 1u);
  EXPECT_EQ(bans_[0].prefix.str(), "127.0.8.41");
}

// A version-1 request (a snigate-watch from before batches) names no edge: an edge without a
// name takes it, as before; a named edge refuses it, since it could be meant for any edge.
TEST_F(RemoteServerTest, VersionOneRequestsOnlyOnAnUnnamedEdge) {
  auto v1 = [](const std::string& prefix) {
    nlohmann::json body{{"cmd", "ban"}, {"prefix", prefix}};
    const std::string text = body.dump(), nonce = random_nonce();
    const auto ts = std::chrono::duration_cast<std::chrono::seconds>(
                        WallClock::now().time_since_epoch()).count() + 1;
    return nlohmann::json{{"v", 1}, {"ts", ts}, {"nonce", nonce}, {"body", text},
                          {"mac", hmac_sha256_hex(kToken, remote_signed_text(1, "", ts, nonce, text))}}
               .dump() + "\n";
  };
  start();
  EXPECT_TRUE(raw({v1("127.0.8.50")})[0]["ok"].get<bool>());
  TearDown();
  io_.restart();
  cfg_.name = "edge-b";
  start();
  auto named = raw({v1("127.0.8.51")})[0];
  EXPECT_FALSE(named["ok"].get<bool>());
  EXPECT_TRUE(named.value("channel", false));
  EXPECT_NE(named["error"].get<std::string>().find("names no edge"), std::string::npos) << named;
  std::lock_guard lock(mu_);
  ASSERT_EQ(bans_.size(), 1u);
}

// Certificates made by the openssl CLI for each test: a CA for each side, the edge's for
// 127.0.8.1, a watcher's, and one from a CA the edge does not trust.
class RemoteTlsTest : public RemoteServerTest {
 protected:
  void SetUp() override {
    RemoteServerTest::SetUp();
    char tmpl[] = "/tmp/sg-remote-tls-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes ";
    auto sh = [&](const std::string& cmd) {
      ASSERT_EQ(std::system(("cd " + dir_ + " && " + cmd + " >/dev/null 2>&1").c_str()), 0) << cmd;
    };
    for (const char* ca : {"edge-ca", "watch-ca", "other-ca"})
      sh(std::string("openssl req -x509") + ec + "-keyout " + ca + ".key -out " + ca +
         ".pem -days 2 -subj /CN=" + ca);
    auto issue = [&](const std::string& name, const std::string& ca, const std::string& san) {
      sh("openssl req" + ec + "-keyout " + name + ".key -out " + name + ".csr -subj /CN=" + name);
      sh("printf 'subjectAltName=" + san + "' > " + name + ".ext && openssl x509 -req -in " + name +
         ".csr -CA " + ca + ".pem -CAkey " + ca + ".key -CAcreateserial -days 2 -out " + name +
         ".pem -extfile " + name + ".ext");
    };
    issue("edge", "edge-ca", "IP:127.0.8.1");
    issue("watcher", "watch-ca", "DNS:watcher");
    issue("stranger", "other-ca", "DNS:stranger");
    issue("elsewhere", "edge-ca", "IP:127.0.8.2");
    cfg_.tls = {dir_ + "/edge.pem", dir_ + "/edge.key", dir_ + "/watch-ca.pem"};
  }
  void TearDown() override {
    RemoteServerTest::TearDown();
    std::filesystem::remove_all(dir_);
  }
  RemoteBanClient client(const std::string& cert, const std::string& ca = "edge-ca") {
    RemoteBanClient c(endpoint_, kToken, 5s);
    EXPECT_EQ(c.use_tls({dir_ + "/" + cert + ".pem", dir_ + "/" + cert + ".key", dir_ + "/" + ca + ".pem"}), "");
    return c;
  }
  std::string dir_;
};

TEST_F(RemoteTlsTest, WatcherWithACertificateFromTheClientCaBans) {
  start();
  auto reply = client("watcher").send(request("127.0.8.60"));
  ASSERT_EQ(reply.status, Status::Ok) << reply.message;
  std::lock_guard lock(mu_);
  ASSERT_EQ(bans_.size(), 1u);
}

// The token alone is not enough: a peer whose certificate the edge's client CA did not sign,
// or one speaking plain TCP, makes no ban.
TEST_F(RemoteTlsTest, PeerWithoutATrustedCertificateIsRefused) {
  start();
  auto stranger = client("stranger").send(request("127.0.8.61"));
  EXPECT_NE(stranger.status, Status::Ok);
  auto plain = RemoteBanClient(endpoint_, kToken, 2s).send(request("127.0.8.62"));
  EXPECT_NE(plain.status, Status::Ok);
  std::lock_guard lock(mu_);
  EXPECT_TRUE(bans_.empty());
}

// The watcher checks the edge too: an edge whose certificate its CA did not sign is not sent
// the ban (its body and log line would reach whoever answers).
TEST_F(RemoteTlsTest, WatcherRefusesAnEdgeItsCaDidNotSign) {
  start();
  auto reply = client("watcher", "other-ca").send(request("127.0.8.63"));
  EXPECT_EQ(reply.status, Status::Retry);
  EXPECT_NE(reply.message.find("TLS handshake"), std::string::npos) << reply.message;
  std::lock_guard lock(mu_);
  EXPECT_TRUE(bans_.empty());
}

// A certificate from the right CA for another address is not this edge's.
TEST_F(RemoteTlsTest, WatcherRefusesAnEdgeCertificateForAnotherAddress) {
  cfg_.tls.cert = dir_ + "/elsewhere.pem";
  cfg_.tls.key = dir_ + "/elsewhere.key";
  start();
  auto reply = client("watcher").send(request("127.0.8.64"));
  EXPECT_EQ(reply.status, Status::Retry);
  EXPECT_NE(reply.message.find("TLS handshake"), std::string::npos) << reply.message;
  std::lock_guard lock(mu_);
  EXPECT_TRUE(bans_.empty());
}

TEST(RemoteBanClient, UnreachableEdgeMeansRetry) {
  // Nothing listens on port 1 of this helper's block.
  auto reply = RemoteBanClient("127.0.8.1:1", kToken, 2s).send(request("127.0.8.9"));
  EXPECT_EQ(reply.status, Status::Retry);
  EXPECT_NE(reply.message.find("refused"), std::string::npos) << reply.message;
}

}  // namespace
}  // namespace snigate::control
