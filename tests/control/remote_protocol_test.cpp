// The remote ban channel's authentication: HMAC-SHA256 as RFC 4231 defines it, and the edge
// refusing forged, tampered, replayed and stale requests; the per-peer rate limit; token
// files and the [remote_ban] section.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sys/stat.h>
#include <unistd.h>

#include "config/diag.h"
#include "control/remote_client.h"
#include "control/remote_config.h"
#include "control/remote_protocol.h"

namespace snigate::control {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const std::string kToken = "0123456789abcdef0123456789abcdef";
const std::string kOther = "fedcba9876543210fedcba9876543210";
const WallClock::time_point kNow = WallClock::time_point(std::chrono::seconds(1800000000));

std::string line(const std::string& token = kToken, WallClock::time_point at = kNow,
                 std::string nonce = random_nonce()) {
  json body{{"cmd", "ban"}, {"prefix", "192.0.2.7"}};
  auto text = sign_remote_request(body, token, at, nonce);
  return text.substr(0, text.size() - 1);
}

TEST(RemoteProtocol, HmacMatchesRfc4231) {
  // RFC 4231 test case 2.
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(RemoteProtocol, NoncesAreRandomHex) {
  auto a = random_nonce(), b = random_nonce();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
}

TEST(RemoteProtocol, ValidRequestIsAcceptedWithItsBody) {
  RemoteAuth auth({kOther, kToken}, 30s);
  auto v = auth.verify(line(), kNow + 2s);
  ASSERT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.token, 1u);
  EXPECT_EQ(v.body["prefix"], "192.0.2.7");
}

// Timestamps at the ends of int64 are refused as off the clock; the arithmetic never wraps
// them into the window (nanoseconds since 1970 overflow past the year 2262).
TEST(RemoteProtocol, AbsurdTimestampsAreOffTheClock) {
  RemoteAuth auth({kToken}, 30s);
  for (std::int64_t ts : {std::numeric_limits<std::int64_t>::max(),
                          std::numeric_limits<std::int64_t>::min(), std::int64_t{1} << 40,
                          std::int64_t{9'223'372'037}}) {
    json req{{"v", 1}, {"ts", ts}, {"nonce", std::string(32, 'a')}, {"body", "{}"},
             {"mac", std::string(64, 'b')}};
    auto v = auth.verify(req.dump(), kNow);
    EXPECT_FALSE(v.ok);
    EXPECT_NE(v.reason.find("off this edge's clock"), std::string::npos) << ts << ": " << v.reason;
  }
}

// Found by fuzz_remote: a key of the wrong type ("v" as a string) threw out of verify(),
// which would end the edge's control loop for any peer that can connect.
TEST(RemoteProtocol, KeysOfTheWrongTypeAreRefusedNotThrown) {
  RemoteAuth auth({kToken}, 30s);
  for (const char* text : {R"({"v":"1"})", R"({"v":[1],"ts":1})", R"({"v":1.5})", R"({"v":null})"}) {
    RemoteVerdict v;
    EXPECT_NO_THROW(v = auth.verify(text, kNow)) << text;
    EXPECT_FALSE(v.ok);
    EXPECT_NE(v.reason.find("protocol version"), std::string::npos) << v.reason;
  }
}

// The nonce memory is lost at a restart: a request signed before the edge started is refused
// (retryable: a watcher signs again), so a captured one cannot be replayed across a restart.
TEST(RemoteProtocol, RequestSignedBeforeTheEdgeStartedIsRefused) {
  RemoteAuth auth({kToken}, 30s, 100, kNow);
  auto before = auth.verify(line(kToken, kNow - 5s), kNow + 1s);
  EXPECT_FALSE(before.ok);
  EXPECT_TRUE(before.retry);
  EXPECT_NE(before.reason.find("signed before this edge started"), std::string::npos) << before.reason;
  EXPECT_TRUE(auth.verify(line(kToken, kNow + 1s), kNow + 1s).ok);
}

// The edge's name is part of what is signed: a request captured on its way to edge A is
// refused by edge B, which shares the token, and renaming it in the request breaks the MAC.
TEST(RemoteProtocol, RequestSignedForAnotherEdgeIsRefused) {
  RemoteAuth edge_b({kToken}, 30s, 100, {}, "edge-b");
  json body{{"cmd", "unban"}, {"prefix", "192.0.2.7"}};
  auto for_a = sign_remote_request(body, kToken, kNow, random_nonce(), "edge-a");
  auto v = edge_b.verify(for_a, kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_FALSE(v.retry);
  EXPECT_NE(v.reason.find("signed for edge \"edge-a\""), std::string::npos) << v.reason;
  auto renamed = json::parse(for_a);
  renamed["edge"] = "edge-b";
  v = edge_b.verify(renamed.dump(), kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.reason.find("bad token"), std::string::npos) << v.reason;
  EXPECT_TRUE(edge_b.verify(sign_remote_request(body, kToken, kNow, random_nonce(), "edge-b"), kNow).ok);
}

TEST(RemoteProtocol, EdgeNamesCannotShiftTheSignedFields) {
  EXPECT_EQ(check_edge_name("edge-a.example_1"), "");
  for (const char* bad : {"", "edge\na", "edge a", "\xc3\xa9"}) EXPECT_NE(check_edge_name(bad), "") << bad;
  EXPECT_NE(check_edge_name(std::string(65, 'a')), "");
}

// The start time leaves two openings that the kept timestamp closes: a request replayed
// after a restart within the same second, and one replayed after the clock stepped back.
TEST(RemoteProtocol, KeptTimestampRefusesReplaysTheStartTimeLetsThrough) {
  const auto file = (std::filesystem::temp_directory_path() /
                     ("snigate-replay-" + std::to_string(::getpid()))).string();
  std::filesystem::remove(file);
  auto text = line(kToken, kNow);
  {
    RemoteAuth first({kToken}, 30s, 100, kNow);
    ASSERT_EQ(first.remember_in(file), "");
    ASSERT_TRUE(first.verify(text, kNow + 200ms).ok);
  }
  RemoteAuth same_second({kToken}, 30s, 100, kNow + 600ms);  // restarted within that second
  ASSERT_EQ(same_second.remember_in(file), "");
  auto v = same_second.verify(text, kNow + 700ms);
  EXPECT_FALSE(v.ok);
  EXPECT_TRUE(v.retry);
  EXPECT_NE(v.reason.find("signed before this edge started"), std::string::npos) << v.reason;
  RemoteAuth stepped_back({kToken}, 30s, 100, kNow - 20s);  // the clock went back 20 s
  ASSERT_EQ(stepped_back.remember_in(file), "");
  EXPECT_FALSE(stepped_back.verify(text, kNow - 19s).ok);
  EXPECT_TRUE(stepped_back.verify(line(kToken, kNow + 1s), kNow + 1s).ok);  // new ones pass
  { std::ofstream(file) << "yesterday\n"; }
  EXPECT_NE(RemoteAuth({kToken}, 30s).remember_in(file).find("not a timestamp"), std::string::npos);
  std::filesystem::remove(file);
}

TEST(RemoteProtocol, BadTokenIsRefused) {
  RemoteAuth auth({kToken}, 30s);
  auto v = auth.verify(line(kOther), kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_FALSE(v.retry);
  EXPECT_NE(v.reason.find("bad token"), std::string::npos) << v.reason;
}

TEST(RemoteProtocol, TamperedBodyIsRefused) {
  RemoteAuth auth({kToken}, 30s);
  auto text = line();
  auto at = text.find("192.0.2.7");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 9, "192.0.2.8");
  auto v = auth.verify(text, kNow);
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.reason.find("bad token"), std::string::npos) << v.reason;
}

TEST(RemoteProtocol, ReplayIsRefused) {
  RemoteAuth auth({kToken}, 30s);
  auto text = line();
  EXPECT_TRUE(auth.verify(text, kNow).ok);
  auto again = auth.verify(text, kNow + 1s);
  EXPECT_FALSE(again.ok);
  EXPECT_NE(again.reason.find("replayed"), std::string::npos) << again.reason;
}

TEST(RemoteProtocol, ExpiredAndFutureTimestampsAreRefused) {
  RemoteAuth auth({kToken}, 30s);
  auto old = auth.verify(line(kToken, kNow - 31s), kNow);
  EXPECT_FALSE(old.ok);
  EXPECT_NE(old.reason.find("31 s off"), std::string::npos) << old.reason;
  auto future = auth.verify(line(kToken, kNow + 45s), kNow);
  EXPECT_FALSE(future.ok);
  EXPECT_NE(future.reason.find("-45 s off"), std::string::npos) << future.reason;
  EXPECT_TRUE(auth.verify(line(kToken, kNow - 30s), kNow).ok);
}

TEST(RemoteProtocol, ForgedRequestsDoNotFillTheReplayCache) {
  RemoteAuth auth({kToken}, 30s, /*max_nonces=*/2);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(auth.verify(line(kOther), kNow).ok);
  EXPECT_TRUE(auth.verify(line(), kNow).ok);
  EXPECT_TRUE(auth.verify(line(), kNow).ok);
  auto full = auth.verify(line(), kNow);
  EXPECT_FALSE(full.ok);
  EXPECT_TRUE(full.retry);
  // Once the remembered requests are out of the window, room is made again.
  EXPECT_TRUE(auth.verify(line(kToken, kNow + 31s), kNow + 31s).ok);
}

TEST(RemoteProtocol, MalformedRequestsAreRefused) {
  RemoteAuth auth({kToken}, 30s);
  for (std::string bad : {std::string("junk"), std::string(R"({"v":1})"),
                          std::string(R"({"v":2,"ts":1,"nonce":"","body":"","mac":""})")}) {
    auto v = auth.verify(bad, kNow);
    EXPECT_FALSE(v.ok) << bad;
    EXPECT_FALSE(v.reason.empty());
  }
}

TEST(RateLimiter, BurstThenRatePerPeer) {
  RateLimiter limiter(/*rate=*/1, /*burst=*/3);
  auto a = boost::asio::ip::make_address("192.0.2.1"), b = boost::asio::ip::make_address("192.0.2.2");
  RateLimiter::Clock::time_point t{};
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.allow(a, t));
  EXPECT_FALSE(limiter.allow(a, t));
  EXPECT_TRUE(limiter.allow(b, t));
  EXPECT_FALSE(limiter.allow(a, t + 500ms));
  EXPECT_TRUE(limiter.allow(a, t + 1s));
  EXPECT_FALSE(limiter.allow(a, t + 1s));
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sg-ctl-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text, mode_t mode) {
    auto path = dir_ + "/" + name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_;
};

using TokenFile = TempDir;

TEST_F(TokenFile, ReadTrimmedWhenPrivate) {
  std::string error;
  EXPECT_EQ(read_token_file(write("t", "  " + kToken + "\n", 0600), error), kToken) << error;
}

TEST_F(TokenFile, RefusedWhenOthersCanReadOrTooShort) {
  std::string error;
  EXPECT_FALSE(read_token_file(write("t", kToken, 0644), error));
  EXPECT_NE(error.find("chmod 600"), std::string::npos) << error;
  EXPECT_FALSE(read_token_file(write("s", "short\n", 0600), error));
  EXPECT_NE(error.find("shorter than 16"), std::string::npos) << error;
  EXPECT_FALSE(read_token_file(dir_ + "/missing", error));
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
}

toml::table parse(const std::string& text) { return toml::parse(std::string_view(text), std::string_view("test.toml")); }

TEST_F(TokenFile, RemoteBanConfig) {
  EXPECT_FALSE(parse_remote_ban_config(parse("")).enabled);
  auto file = write("t", kToken, 0600);
  auto cfg = parse_remote_ban_config(parse("[remote_ban]\nlisten = \"127.0.8.1:7443\"\n"
                                           "token_files = [\"" + file + "\"]\nrate = 2\n"
                                           "allow = [\"127.0.8.0/24\"]\nmax_skew = \"10s\"\n"
                                           "name = \"edge-a\"\nban_rate = 50\nban_burst = 700\n"));
  EXPECT_TRUE(cfg.enabled);
  EXPECT_EQ(cfg.name, "edge-a");
  EXPECT_EQ(cfg.ban_rate, 50);
  EXPECT_EQ(cfg.ban_burst, 700);
  EXPECT_EQ(cfg.listen.port(), 7443);
  ASSERT_EQ(cfg.tokens.size(), 1u);
  EXPECT_EQ(cfg.tokens[0], kToken);
  EXPECT_EQ(cfg.rate, 2);
  EXPECT_EQ(cfg.max_skew, 10s);
  ASSERT_EQ(cfg.allow.size(), 1u);

  auto error_of = [](const std::string& text) -> std::string {
    try {
      parse_remote_ban_config(parse(text));
    } catch (const config::ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of("[remote_ban]\nlisten = \"127.0.8.1:7443\"\n").find("needs 'token_files' or 'tokens'"),
            std::string::npos);
  EXPECT_NE(error_of("[remote_ban]\nlisten = \"127.0.8.1:7443\"\ntokens = [\"short\"]\n")
                .find("test.toml:3"),
            std::string::npos);
  EXPECT_NE(error_of("[remote_ban]\nlisten = \"127.0.8.1:7443\"\ntoken = \"" + kToken + "\"\n")
                .find("did you mean"),
            std::string::npos);
  EXPECT_NE(error_of("[remote_ban]\nlisten = \"127.0.8.1:7443\"\ntoken_files = [\"" +
                     write("w", kToken, 0644) + "\"]\n")
                .find("chmod 600"),
            std::string::npos);
  EXPECT_NE(error_of("[remote_ban]\nlisten = \"127.0.8.1:7443\"\ntokens = [\"" + kToken +
                     "\"]\nname = \"edge a\"\n")
                .find("test.toml:4:8: [remote_ban] name: an edge name is made of letters"),
            std::string::npos)
      << error_of("[remote_ban]\nlisten = \"127.0.8.1:7443\"\ntokens = [\"" + kToken + "\"]\nname = \"edge a\"\n");
  EXPECT_NE(error_of("[remote_ban]\nlisten = \"127.0.8.1:7443\"\ntokens = [\"" + kToken +
                     "\"]\ntls_cert = \"/etc/snigate/edge.pem\"\n")
                .find("TLS needs all of tls_cert, tls_key and tls_client_ca"),
            std::string::npos);
  // The defaults take a burst of 10,000 bans in a few requests.
  auto defaults = parse_remote_ban_config(parse("[remote_ban]\nlisten = \"127.0.8.1:7443\"\ntokens = [\"" + kToken + "\"]\n"));
  EXPECT_EQ(defaults.ban_burst, 10000);
  EXPECT_GE(defaults.burst * static_cast<double>(kRemoteMaxBatch), 10000);
}

}  // namespace
}  // namespace snigate::control
