// snigate-watch's outbox: bans survive an unreachable edge and a restart, in order, and a
// ban the edge refuses for good is not retried forever.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "ban_queue.h"

namespace snigate::watch_tool {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Status = control::RemoteReply::Status;

bans::BanRequest ban(const std::string& ip) {
  bans::BanRequest r;
  r.prefix = *net::Prefix::parse(ip);
  r.duration = 600s;
  r.reason = "jail web: 3 failures";
  r.jail = "web";
  r.matched_at = bans::Clock::time_point(1'763'895'845'123ms);
  r.sample = "198.51.100.1 - - [] \"POST /login\" 401 \xff";  // invalid UTF-8 survives
  return r;
}

struct FakeEdge {
  std::mutex mu;
  std::atomic<bool> up{false};
  std::vector<std::string> received;
  std::atomic<int> attempts{0};
  control::RemoteReply operator()(const bans::BanRequest& r) {
    ++attempts;
    if (!up) return {Status::Retry, "connection refused"};
    std::lock_guard lock(mu);
    received.push_back(r.prefix.str());
    if (r.prefix.str() == "203.0.113.66") return {Status::Refused, "in ignore"};
    return {Status::Ok, "banned"};
  }
};

class Queue : public ::testing::Test {
 protected:
  void SetUp() override {
    file = (fs::temp_directory_path() / ("snigate-watch-queue-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".jsonl"))
               .string();
    fs::remove(file);
  }
  void TearDown() override { fs::remove(file); }
  BanQueueOptions options() const { return {file, 10ms, 40ms}; }
  std::string file;
};

TEST(QueueJson, RoundTrip) {
  auto r = ban("2001:db8::/64");
  auto back = from_json_line(to_json_line(r));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->prefix.str(), "2001:db8::/64");
  EXPECT_EQ(back->duration, r.duration);
  EXPECT_EQ(back->jail, "web");
  EXPECT_EQ(back->matched_at, r.matched_at);
  EXPECT_FALSE(from_json_line("{not json"));
  EXPECT_FALSE(from_json_line(R"({"prefix":7})"));  // a damaged line, not an exception
  EXPECT_FALSE(from_json_line(R"({"prefix":"192.0.2.1","duration_s":"1h"})"));
}

TEST_F(Queue, RetriesWithBackoffUntilTheEdgeAnswers) {
  FakeEdge edge;
  BanQueue q(options(), [&](const auto& r) { return edge(r); });
  q.push(ban("198.51.100.1"));
  q.push(ban("198.51.100.2"));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(q.pending(), 2u);
  int tries = edge.attempts;
  EXPECT_GE(tries, 3);   // retried...
  EXPECT_LE(tries, 12);  // ...with backoff (10, 20, 40, 40 ms...), not in a busy loop
  edge.up = true;
  ASSERT_TRUE(q.drain(2s));
  EXPECT_EQ(edge.received, (std::vector<std::string>{"198.51.100.1", "198.51.100.2"}));
}

TEST_F(Queue, SurvivesARestartWhileTheEdgeIsDown) {
  FakeEdge edge;
  {
    BanQueue q(options(), [&](const auto& r) { return edge(r); });
    q.push(ban("198.51.100.7"));
    q.push(ban("2001:db8:7::/64"));
  }  // snigate-watch stops with both unsent
  edge.up = true;
  BanQueue q(options(), [&](const auto& r) { return edge(r); });
  ASSERT_TRUE(q.drain(2s));
  EXPECT_EQ(edge.received, (std::vector<std::string>{"198.51.100.7", "2001:db8:7::/64"}));
  // Sent bans leave the file: a third start sends nothing again.
  BanQueue again(options(), [&](const auto& r) { return edge(r); });
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(edge.received.size(), 2u);
}

TEST_F(Queue, RefusedBanIsDroppedAndTheNextOneSent) {
  FakeEdge edge;
  edge.up = true;
  BanQueue q(options(), [&](const auto& r) { return edge(r); });
  q.push(ban("203.0.113.66"));
  q.push(ban("203.0.113.67"));
  ASSERT_TRUE(q.drain(2s));
  EXPECT_EQ(edge.received, (std::vector<std::string>{"203.0.113.66", "203.0.113.67"}));
}

// Every delivery of one ban carries one id, across retries and across a restart, so the edge
// can tell a resend (its reply lost) from a new offence; two bans have two ids.
TEST_F(Queue, OneIdPerBanAcrossRetriesAndRestarts) {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> seen;  // prefix, id
  std::atomic<bool> up{false};
  auto edge = [&](const bans::BanRequest& r) -> control::RemoteReply {
    std::lock_guard lock(mu);
    seen.emplace_back(r.prefix.str(), r.id);
    if (!up) return {Status::Retry, "reply timed out"};
    return {Status::Ok, "banned"};
  };
  {
    BanQueue q(options(), edge);
    q.push(ban("198.51.100.9"));
    q.push(ban("198.51.100.10"));
    std::this_thread::sleep_for(100ms);
  }
  up = true;
  BanQueue q(options(), edge);
  ASSERT_TRUE(q.drain(2s));
  std::lock_guard lock(mu);
  std::map<std::string, std::set<std::string>> ids;
  for (const auto& [prefix, id] : seen) ids[prefix].insert(id);
  ASSERT_EQ(ids.size(), 2u);
  ASSERT_EQ(ids["198.51.100.9"].size(), 1u);
  ASSERT_EQ(ids["198.51.100.10"].size(), 1u);
  EXPECT_EQ(ids["198.51.100.9"].begin()->size(), 32u);
  EXPECT_NE(*ids["198.51.100.9"].begin(), *ids["198.51.100.10"].begin());
  EXPECT_GE(seen.size(), 4u);  // retried before the restart, then delivered
}

// A ban refused for the channel's sake (a wrong token, the clock) is held, survives a
// restart, and goes again, with its id, once the edge accepts bans from us: at the next
// accepted ban, or at an idle probe.
TEST_F(Queue, ChannelRefusalsAreHeldAndResentOnceTheEdgeAcceptsAgain) {
  std::mutex mu;
  std::vector<std::string> accepted;
  std::map<std::string, std::set<std::string>> ids;
  std::atomic<bool> token_fixed{false};
  auto edge = [&](const bans::BanRequest& r) -> control::RemoteReply {
    std::lock_guard lock(mu);
    ids[r.prefix.str()].insert(r.id);
    if (r.prefix.str() == "203.0.113.66") return {Status::Refused, "in ignore"};  // for good
    if (!token_fixed) return {Status::Refused, "bad token", true};
    accepted.push_back(r.prefix.str());
    return {Status::Ok, "banned"};
  };
  {
    BanQueue q(options(), edge);
    q.push(ban("198.51.100.20"));
    q.push(ban("203.0.113.66"));
    q.push(ban("198.51.100.21"));
    for (int i = 0; i < 200 && q.pending() > 0; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(q.held(), 2u);
    EXPECT_EQ(q.held_reason(), "bad token");
  }  // snigate-watch restarts with the token fixed
  token_fixed = true;
  BanQueue q(options(), edge);
  for (int i = 0; i < 300 && q.held() + q.pending() > 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(q.held(), 0u);
  std::lock_guard lock(mu);
  std::set<std::string> got(accepted.begin(), accepted.end());
  EXPECT_EQ(got, (std::set<std::string>{"198.51.100.20", "198.51.100.21"}));
  for (const auto& [prefix, seen] : ids) EXPECT_EQ(seen.size(), 1u) << prefix;  // one id each
}

}  // namespace
}  // namespace snigate::watch_tool
