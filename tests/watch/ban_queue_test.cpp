// snigate-watch's outbox: bans survive an unreachable edge and a restart, in order, and a
// ban the edge refuses for good is not retried forever; bans go in batches, each acted on by
// its own answer; the file is a journal appended to and compacted, which survives restarts
// (also half-written), and the files of earlier versions still load.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

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

// A Send that answers each ban of a batch with `one(ban)`.
template <class One>
BanQueue::Send per_ban(One& one) {
  return [&one](const std::vector<bans::BanRequest>& batch) {
    std::vector<control::RemoteReply> out;
    for (const auto& r : batch) out.push_back(one(r));
    return out;
  };
}

// Polls `pred` (every 5 ms, up to `limit`): a wait for what the sender thread does next,
// never the proof that it did not.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 3000ms) {
  for (auto end = std::chrono::steady_clock::now() + limit; !pred();) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// The edge, from the sender's thread; the test reads what it saw through the accessors,
// under its mutex.
struct FakeEdge {
  std::mutex mu;
  std::atomic<bool> up{false};
  std::vector<std::string> received;
  std::vector<std::chrono::steady_clock::time_point> sent_at;  // one a batch
  std::vector<control::RemoteReply> operator()(const std::vector<bans::BanRequest>& batch) {
    std::lock_guard lock(mu);
    sent_at.push_back(std::chrono::steady_clock::now());
    std::vector<control::RemoteReply> out;
    for (const auto& r : batch) {
      if (!up) {
        out.push_back({Status::Retry, "connection refused"});
        continue;
      }
      received.push_back(r.prefix.str());
      if (r.prefix.str() == "203.0.113.66") out.push_back({Status::Refused, "in ignore"});
      else out.push_back({Status::Ok, "banned"});
    }
    return out;
  }
  std::vector<std::string> got() {
    std::lock_guard lock(mu);
    return received;
  }
  std::vector<std::chrono::steady_clock::time_point> batches() {
    std::lock_guard lock(mu);
    return sent_at;
  }
};

std::vector<std::string> lines_of(const std::string& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

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
  BanQueue q(options(), std::ref(edge));
  q.push(ban("198.51.100.1"));
  q.push(ban("198.51.100.2"));
  ASSERT_TRUE(eventually([&] { return edge.batches().size() >= 5; })) << "not retried";
  EXPECT_EQ(q.pending(), 2u);  // a down edge never takes a ban off the queue
  // Backoff 10, 20, 40, 40 ms (options()), plus jitter: a wait between tries is never
  // shorter, however slow the machine (a busy loop would retry at once).
  const auto at = edge.batches();
  const std::chrono::milliseconds least[] = {10ms, 20ms, 40ms, 40ms};
  for (std::size_t i = 0; i < 4; ++i) EXPECT_GE(at[i + 1] - at[i], least[i]) << "retry " << i + 1;
  edge.up = true;
  ASSERT_TRUE(q.drain(2s));
  EXPECT_EQ(edge.got(), (std::vector<std::string>{"198.51.100.1", "198.51.100.2"}));
}

TEST_F(Queue, SurvivesARestartWhileTheEdgeIsDown) {
  FakeEdge edge;
  {
    BanQueue q(options(), std::ref(edge));
    q.push(ban("198.51.100.7"));
    q.push(ban("2001:db8:7::/64"));
  }  // snigate-watch stops with both unsent
  edge.up = true;
  BanQueue q(options(), std::ref(edge));
  ASSERT_TRUE(q.drain(2s));
  EXPECT_EQ(edge.got(), (std::vector<std::string>{"198.51.100.7", "2001:db8:7::/64"}));
  // Sent bans leave the file: a third start has nothing to send. It loads the file before
  // it returns, and towards an edge that is down nothing leaves its queue, so what it
  // holds is exactly what it loaded.
  FakeEdge down;
  BanQueue again(options(), std::ref(down));
  EXPECT_EQ(again.pending(), 0u);
  EXPECT_EQ(again.held(), 0u);
}

TEST_F(Queue, RefusedBanIsDroppedAndTheNextOneSent) {
  FakeEdge edge;
  edge.up = true;
  BanQueue q(options(), std::ref(edge));
  q.push(ban("203.0.113.66"));
  q.push(ban("203.0.113.67"));
  ASSERT_TRUE(q.drain(2s));
  EXPECT_EQ(edge.got(), (std::vector<std::string>{"203.0.113.66", "203.0.113.67"}));
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
    BanQueue q(options(), per_ban(edge));
    q.push(ban("198.51.100.9"));
    q.push(ban("198.51.100.10"));
    ASSERT_TRUE(eventually([&] {
      std::lock_guard lock(mu);
      return seen.size() >= 4;  // sent, refused for now, sent again
    })) << "not retried";
  }
  up = true;
  BanQueue q(options(), per_ban(edge));
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
    BanQueue q(options(), per_ban(edge));
    q.push(ban("198.51.100.20"));
    q.push(ban("203.0.113.66"));
    q.push(ban("198.51.100.21"));
    ASSERT_TRUE(eventually([&] { return q.pending() == 0; }));
    EXPECT_EQ(q.held(), 2u);
    EXPECT_EQ(q.held_reason(), "bad token");
  }  // snigate-watch restarts with the token fixed
  token_fixed = true;
  BanQueue q(options(), per_ban(edge));
  EXPECT_TRUE(eventually([&] { return q.held() + q.pending() == 0; }));
  EXPECT_EQ(q.held(), 0u);
  std::lock_guard lock(mu);
  std::set<std::string> got(accepted.begin(), accepted.end());
  EXPECT_EQ(got, (std::set<std::string>{"198.51.100.20", "198.51.100.21"}));
  for (const auto& [prefix, seen] : ids) EXPECT_EQ(seen.size(), 1u) << prefix;  // one id each
}

// Bans waiting when the sender starts go in one batch, and each is acted on by its own
// answer: accepted and refused-for-good ones leave, a channel refusal is held, a retryable
// one (the edge's ban rate) is sent again, alone, and the accepted ones are never resent.
TEST_F(Queue, OneBatchAndEachBanByItsOwnAnswer) {
  {
    std::ofstream out(file);
    for (const char* ip : {"198.51.100.30", "198.51.100.31", "198.51.100.32", "198.51.100.33", "198.51.100.34"}) {
      auto r = ban(ip);
      r.id = std::string("id-") + ip;
      out << to_json_line(r) << "\n";
    }
  }
  std::mutex mu;
  std::vector<std::vector<std::string>> batches;
  auto edge = [&](const std::vector<bans::BanRequest>& batch) {
    std::lock_guard lock(mu);
    batches.emplace_back();
    std::vector<control::RemoteReply> out;
    for (const auto& r : batch) {
      batches.back().push_back(r.prefix.str());
      const auto ip = r.prefix.str();
      if (ip == "198.51.100.31") out.push_back({Status::Refused, "in ignore"});
      else if (ip == "198.51.100.32") out.push_back({Status::Refused, "bad token", true});
      else if (ip == "198.51.100.33" && batches.size() == 1) out.push_back({Status::Retry, "rate limited"});
      else out.push_back({Status::Ok, "banned"});
    }
    return out;
  };
  BanQueue q(options(), edge);
  ASSERT_TRUE(q.drain(2s));
  EXPECT_EQ(q.held(), 1u);
  EXPECT_EQ(q.held_reason(), "bad token");
  std::lock_guard lock(mu);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0], (std::vector<std::string>{"198.51.100.30", "198.51.100.31", "198.51.100.32",
                                                  "198.51.100.33", "198.51.100.34"}));
  EXPECT_EQ(batches[1], (std::vector<std::string>{"198.51.100.33"}));
  // The held ban goes again once the edge accepts a later one (not one of its own batch).
  EXPECT_EQ(batches[2], (std::vector<std::string>{"198.51.100.32"}));
}

// A push appends one line to the file; it does not rewrite it (which made each push cost the
// whole backlog: a 5,000-line burst fell from 446 to 98 pushes/s).
TEST_F(Queue, PushAppendsToTheFileInsteadOfRewritingIt) {
  FakeEdge edge;  // down
  BanQueue q(options(), std::ref(edge));
  // A second name for the file as it is now: appends show through it, a file rewritten and
  // renamed into place would leave it behind.
  const std::string link = file + ".link";
  fs::remove(link);
  fs::create_hard_link(file, link);
  for (int i = 0; i < 50; ++i) q.push(ban("198.51.100." + std::to_string(100 + i)));
  auto lines = lines_of(link);
  fs::remove(link);
  ASSERT_EQ(lines.size(), 50u) << "the file was replaced, not appended to";
  EXPECT_NE(lines[49].find("198.51.100.149"), std::string::npos);
  EXPECT_EQ(lines_of(file), lines);
}

// 1,500 bans, the edge takes 1,200 and then goes down: the journal is compacted on the way
// (it would hold 2,700 lines), and a restart sends the 300 left, each once, nothing lost.
TEST_F(Queue, AppendedAndCompactedQueueSurvivesARestartWithNothingLostOrDuplicated) {
  std::mutex mu;
  std::map<std::string, int> accepted;  // prefix -> times
  std::atomic<bool> capped{true};
  auto edge = [&](const std::vector<bans::BanRequest>& batch) {
    std::lock_guard lock(mu);
    std::vector<control::RemoteReply> out;
    for (const auto& r : batch) {
      if (capped && accepted.size() >= 1200) {
        out.push_back({Status::Retry, "edge down"});
        continue;
      }
      ++accepted[r.prefix.str()];
      out.push_back({Status::Ok, "banned"});
    }
    return out;
  };
  auto ip = [](int i) { return "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250); };
  {
    BanQueue q(options(), edge);
    for (int i = 0; i < 1500; ++i) q.push(ban(ip(i)));
    EXPECT_TRUE(eventually([&] { return q.pending() <= 300; }));
    EXPECT_EQ(q.pending(), 300u);
  }
  // The journal's bound after each batch: twice its live bans plus the slack (1,024); when
  // the last compaction fell depends on how the pushes and batches interleaved.
  EXPECT_LE(lines_of(file).size(), 2 * 300u + 1024u) << "never compacted";
  capped = false;
  BanQueue q(options(), edge);
  ASSERT_TRUE(q.drain(5s));
  std::lock_guard lock(mu);
  ASSERT_EQ(accepted.size(), 1500u);
  for (const auto& [prefix, times] : accepted) EXPECT_EQ(times, 1) << prefix;
}

// A crash can leave the journal with records after its last compaction and a line cut in
// half: the replay keeps the done, held and released states and skips the torn line.
TEST_F(Queue, JournalReplaysItsRecordsAfterACrash) {
  {
    QueueState state;
    std::size_t bad = 0;
    std::string error;
    auto journal = QueueJournal::open(file, state, bad, error);
    ASSERT_TRUE(error.empty()) << error;
    for (const char* ip : {"198.51.100.40", "198.51.100.41", "198.51.100.42", "198.51.100.43"}) {
      auto r = ban(ip);
      r.id = std::string("id-") + ip;
      ASSERT_TRUE(journal.queued(r));
    }
    journal.done("id-198.51.100.40");
    journal.hold("id-198.51.100.41", "bad token");
    journal.hold("id-198.51.100.42", "bad token");
    journal.release("id-198.51.100.42");
    journal.queued(ban("198.51.100.40"));  // queued again later: a new ban with its own id
  }
  { std::ofstream(file, std::ios::app) << R"({"prefix":"198.51.100.44","reas)"; }
  QueueState state;
  std::size_t bad = 0;
  std::string error;
  auto journal = QueueJournal::open(file, state, bad, error);
  EXPECT_EQ(bad, 1u);
  std::vector<std::string> pending;
  for (const auto& r : state.pending) pending.push_back(r.prefix.str());
  EXPECT_EQ(pending, (std::vector<std::string>{"198.51.100.42", "198.51.100.43", "198.51.100.40"}));
  ASSERT_EQ(state.held.size(), 1u);
  EXPECT_EQ(state.held[0].id, "id-198.51.100.41");
  EXPECT_EQ(state.held_reason, "bad token");
  EXPECT_EQ(lines_of(file).size(), 4u);  // compacted at open: live bans only
}

// The files written before the journal (every line a ban, "held" on held ones, no id on
// bans queued before ids existed) load as they are; a ban without an id gets one, which
// the file keeps, so it is the same id after one more restart.
TEST_F(Queue, QueueFileOfAnEarlierVersionStillLoads) {
  {
    std::ofstream out(file);
    auto old = ban("198.51.100.50");  // from before ids: none
    out << to_json_line(old) << "\n";
    auto with_id = ban("198.51.100.51");
    with_id.id = "0123456789abcdef0123456789abcdef";
    out << to_json_line(with_id) << "\n";
    auto held = ban("198.51.100.52");
    held.id = "fedcba9876543210fedcba9876543210";
    auto line = to_json_line(held);
    out << line.substr(0, line.size() - 1) << R"(,"held":"bad token"})" << "\n";
  }
  std::mutex mu;
  std::map<std::string, std::set<std::string>> ids;
  std::atomic<int> calls{0};
  auto down = [&](const std::vector<bans::BanRequest>& batch) {
    std::lock_guard lock(mu);
    ++calls;
    for (const auto& r : batch) ids[r.prefix.str()].insert(r.id);
    return std::vector<control::RemoteReply>(batch.size(), {Status::Retry, "edge down"});
  };
  for (int restart = 0; restart < 2; ++restart) {
    const int before = calls;
    BanQueue q(options(), down);
    EXPECT_EQ(q.pending(), 2u);
    EXPECT_EQ(q.held(), 1u);
    EXPECT_EQ(q.held_reason(), "bad token");
    EXPECT_TRUE(eventually([&] { return calls > before; }));
  }
  std::lock_guard lock(mu);
  ASSERT_EQ(ids["198.51.100.50"].size(), 1u);  // one id, across the restart
  EXPECT_EQ(ids["198.51.100.50"].begin()->size(), 32u);
  EXPECT_EQ(ids["198.51.100.51"], (std::set<std::string>{"0123456789abcdef0123456789abcdef"}));
}

}  // namespace
}  // namespace snigate::watch_tool
