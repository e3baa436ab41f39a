// Which server a connection goes to: weighted rotation, backups, and passive health, with a
// clock the test moves by hand.
#include <gtest/gtest.h>

#include "upstream/upstream_pool.h"

namespace snigate::upstream {
namespace {

using namespace std::chrono_literals;

config::ServerConfig server(std::string host, unsigned weight = 1, bool backup = false,
                            unsigned max_fails = 1, std::chrono::milliseconds fail_timeout = 10s) {
  config::ServerConfig s;
  s.host = host;
  s.port = 443;
  s.weight = weight;
  s.backup = backup;
  s.max_fails = max_fails;
  s.fail_timeout = fail_timeout;
  s.text = host + ":443";
  return s;
}

class PoolTest : public ::testing::Test {
 protected:
  UpstreamPool::Clock::time_point now{std::chrono::hours(1)};
  std::function<UpstreamPool::Clock::time_point()> clock = [this] { return now; };

  static config::BackendConfig backend(std::vector<config::ServerConfig> servers) {
    config::BackendConfig b;
    b.name = "b";
    b.servers = std::move(servers);
    return b;
  }

  static std::string sequence(UpstreamPool& pool, int n, std::vector<std::size_t> tried = {}) {
    std::string out;
    for (int i = 0; i < n; ++i) {
      auto p = pool.pick(tried);
      out += p ? p->server->host : "-";
    }
    return out;
  }
};

TEST_F(PoolTest, SmoothWeightedRoundRobinLikeNginx) {
  // nginx's documented example: weights 5, 1, 1 give a a b a c a a, not a burst of five a's.
  UpstreamPool pool(backend({server("a", 5), server("b", 1), server("c", 1)}), clock);
  EXPECT_EQ(sequence(pool, 14), "aabacaaaabacaa");
}

TEST_F(PoolTest, EqualWeightsAlternate) {
  UpstreamPool pool(backend({server("a"), server("b"), server("c")}), clock);
  EXPECT_EQ(sequence(pool, 6), "abcabc");
}

TEST_F(PoolTest, TriedServersAreSkippedThenBackupsThenNothing) {
  UpstreamPool pool(backend({server("a"), server("b"), server("x", 1, true), server("y", 1, true)}),
                    clock);
  EXPECT_EQ(sequence(pool, 4), "abab");
  std::vector<std::size_t> tried{0};
  EXPECT_EQ(pool.pick(tried)->server->host, "b");
  tried.push_back(1);
  EXPECT_EQ(pool.pick(tried)->server->host, "x");
  tried.push_back(2);
  EXPECT_EQ(pool.pick(tried)->server->host, "y");
  tried.push_back(3);
  EXPECT_FALSE(pool.pick(tried));
}

TEST_F(PoolTest, BackupsAreWeightedToo) {
  UpstreamPool pool(backend({server("a"), server("x", 2, true), server("y", 1, true)}), clock);
  std::vector<std::size_t> tried{0};
  EXPECT_EQ(sequence(pool, 6, tried), "xyxxyx");
}

TEST_F(PoolTest, MaxFailsWithinFailTimeoutMarksDownForFailTimeout) {
  UpstreamPool pool(backend({server("a", 1, false, 2, 10s), server("b")}), clock);
  pool.report_failure(0);
  EXPECT_TRUE(pool.is_up(0));
  now += 9s;
  pool.report_failure(0);
  EXPECT_FALSE(pool.is_up(0));
  EXPECT_EQ(sequence(pool, 3), "bbb");
  now += 9s;
  EXPECT_FALSE(pool.is_up(0));
  now += 1s;
  EXPECT_TRUE(pool.is_up(0));
  EXPECT_NE(sequence(pool, 2).find('a'), std::string::npos);
}

TEST_F(PoolTest, FailuresFurtherApartThanFailTimeoutDoNotAddUp) {
  UpstreamPool pool(backend({server("a", 1, false, 2, 10s), server("b")}), clock);
  pool.report_failure(0);
  now += 11s;
  pool.report_failure(0);
  EXPECT_TRUE(pool.is_up(0));
  now += 1s;
  pool.report_failure(0);
  EXPECT_FALSE(pool.is_up(0));
}

TEST_F(PoolTest, SuccessForgivesEarlierFailures) {
  UpstreamPool pool(backend({server("a", 1, false, 2, 10s), server("b")}), clock);
  pool.report_failure(0);
  pool.report_success(0);
  pool.report_failure(0);
  EXPECT_TRUE(pool.is_up(0));
}

TEST_F(PoolTest, MaxFailsZeroNeverMarksDown) {
  UpstreamPool pool(backend({server("a", 1, false, 0), server("b")}), clock);
  for (int i = 0; i < 10; ++i) pool.report_failure(0);
  EXPECT_TRUE(pool.is_up(0));
}

TEST_F(PoolTest, LoneServerIsNeverMarkedDown) {
  UpstreamPool pool(backend({server("a")}), clock);
  pool.report_failure(0);
  EXPECT_TRUE(pool.is_up(0));
  EXPECT_EQ(sequence(pool, 2), "aa");
}

TEST_F(PoolTest, DownPrimariesHandOverToBackupsAndBack) {
  UpstreamPool pool(backend({server("a"), server("b"), server("x", 1, true)}), clock);
  pool.report_failure(0);
  pool.report_failure(1);
  EXPECT_EQ(sequence(pool, 2), "xx");
  now += 10s;
  EXPECT_EQ(sequence(pool, 2), "ab");
}

TEST_F(PoolTest, EverythingDownLeavesNothing) {
  UpstreamPool pool(backend({server("a"), server("x", 1, true)}), clock);
  pool.report_failure(0);
  pool.report_failure(1);
  EXPECT_FALSE(pool.pick({}));
}

}  // namespace
}  // namespace snigate::upstream
