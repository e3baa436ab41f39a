// The descriptor budget's arithmetic (daemon/fd_budget.h): 2 descriptors per connection in
// every relay, plus 2 per pipe of the splice relay's bounded pool under a relay that splices
// (splice, and sockmap where splice is its fallback), all within what the limit leaves after
// the daemon's own reserve.
#include <gtest/gtest.h>

#include "daemon/fd_budget.h"

namespace snigate::daemon {
namespace {

// This machine's and CI's hard limit, which the daemon cannot raise.
constexpr std::uint64_t kLimit = 20000;
constexpr std::size_t kDefaultMax = 65536;

BudgetRequest request(bool pipes) {
  return {.limit = kLimit,
          .listening_sockets = 1,
          .pipes = pipes,
          .max_connections = std::nullopt,
          .max_pipes = std::nullopt,
          .default_max_connections = kDefaultMax};
}

std::size_t descriptors_used(const ConnectionBudget& b) {
  return b.max_connections * kDescriptorsPerConnection + b.max_pipes * kDescriptorsPerPipe;
}

TEST(FdBudget, CopyCountsTwoPerConnectionAndNoPipes) {
  const auto b = budget_connections(request(false));
  EXPECT_EQ(b.max_pipes, 0u);
  EXPECT_EQ(b.max_connections, descriptors_for_connections(kLimit, 1) / 2);
  EXPECT_FALSE(b.capped);
}

// The bench's idle row: 5,000 connections under a hard limit of 20,000 in every relay.
TEST(FdBudget, SpliceAndSockmapAffordFiveThousandAtTwentyThousand) {
  const auto b = budget_connections(request(true));
  EXPECT_GE(b.max_connections, 5000u);
  EXPECT_EQ(b.max_pipes, b.max_connections / 4) << "HAProxy's maxconn/4";
  EXPECT_LE(descriptors_used(b), descriptors_for_connections(kLimit, 1));
  EXPECT_FALSE(b.capped || b.pipes_capped);
}

TEST(FdBudget, ConfiguredMaxConnectionsSizesTheDefaultPipes) {
  auto r = request(true);
  r.max_connections = 1000;
  const auto b = budget_connections(r);
  EXPECT_EQ(b.max_connections, 1000u);
  EXPECT_EQ(b.max_pipes, 250u);
  EXPECT_FALSE(b.capped);
}

TEST(FdBudget, ConfiguredMaxPipesLeaveTheRestToConnections) {
  auto r = request(true);
  const std::size_t room = descriptors_for_connections(kLimit, 1);
  r.max_pipes = 100;
  auto b = budget_connections(r);
  EXPECT_EQ(b.max_pipes, 100u);
  EXPECT_EQ(b.max_connections, (room - 200) / 2);
  r.max_pipes = 0;  // every burst by copy: nothing kept for pipes
  b = budget_connections(r);
  EXPECT_EQ(b.max_pipes, 0u);
  EXPECT_EQ(b.max_connections, room / 2);
}

TEST(FdBudget, MaxPipesAboveTheLimitTakeHalfAndSaySo) {
  auto r = request(true);
  r.max_pipes = 1'000'000;
  const auto b = budget_connections(r);
  const std::size_t room = descriptors_for_connections(kLimit, 1);
  EXPECT_TRUE(b.pipes_capped);
  EXPECT_EQ(b.max_pipes, room / 4);
  EXPECT_GE(b.max_connections, room / 4 - 1);
  EXPECT_LE(descriptors_used(b), room);
}

TEST(FdBudget, MaxConnectionsAboveTheLimitIsCapped) {
  auto r = request(true);
  r.max_connections = 100'000;
  const auto b = budget_connections(r);
  EXPECT_TRUE(b.capped);
  EXPECT_EQ(b.max_connections, b.affordable);
  EXPECT_LE(descriptors_used(b), descriptors_for_connections(kLimit, 1));
}

// A limit too small for the reserve still lets one connection in, by copy if need be.
TEST(FdBudget, ATinyLimitNeverUnderflows) {
  for (bool pipes : {false, true}) {
    auto r = request(pipes);
    r.limit = 32;
    const auto b = budget_connections(r);
    EXPECT_EQ(b.max_connections, 1u) << (pipes ? "with pipes" : "without");
    EXPECT_LE(b.max_pipes, 1u);
  }
}

}  // namespace
}  // namespace snigate::daemon
