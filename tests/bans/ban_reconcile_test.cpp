// Restarts, reboots and a disk that refuses writes: the map and the store are reconciled,
// only their differences are written, and no ban already made is dropped.
#include <sqlite3.h>

#include "test_support.h"

namespace snigate::bans::testing {
namespace {

using namespace std::chrono_literals;

class ReconcileTest : public ::testing::Test {
 protected:
  std::string db() const { return dir.file("bans.db"); }
  ScratchDir dir;
  std::shared_ptr<FakeBanMap> pins = std::make_shared<FakeBanMap>();
  std::shared_ptr<ManualClock> clock = std::make_shared<ManualClock>();
};

TEST_F(ReconcileTest, RestartKeepsBansWithoutRewritingTheMap) {
  {
    auto first = open_manager(pins, db(), clock);
    for (const char* p : {"10.5.1.1", "10.5.2.0/24", "fd00:5::a"})
      ASSERT_TRUE(first->ban(request(p, 1h)).ok);
    ASSERT_TRUE(first->ban(request("10.5.1.2")).ok);  // permanent
  }
  const auto puts = pins->puts();
  clock->advance(5s);
  auto second = open_manager(pins, db(), clock);
  EXPECT_EQ(second->reconciled().in_sync, 4u);
  EXPECT_EQ(second->reconciled().restored_to_map, 0u);
  EXPECT_EQ(pins->puts(), puts);  // no storm of rewrites
  EXPECT_EQ(pins->erases(), 0u);
  EXPECT_TRUE(second->banned(addr("10.5.2.3")));
  EXPECT_TRUE(second->banned(addr("fd00:5::a")));
  EXPECT_EQ(second->list().size(), 4u);
}

TEST_F(ReconcileTest, RebootRebuildsTheMapFromTheStoreOnWallClockExpiries) {
  {
    auto before = open_manager(pins, db(), clock);
    ASSERT_TRUE(before->ban(request("10.5.1.1", 1h)).ok);
    ASSERT_TRUE(before->ban(request("10.5.1.2", 60s)).ok);
    ASSERT_TRUE(before->ban(request("fd00:5::/64")).ok);
  }
  // Down for two minutes: the pins are gone and boot time starts again.
  auto fresh = std::make_shared<FakeBanMap>();
  clock->advance(120s);
  clock->reboot();
  auto after = open_manager(fresh, db(), clock);
  EXPECT_EQ(after->reconciled().restored_to_map, 2u);
  EXPECT_EQ(after->reconciled().expired, 1u);  // its minute passed while the machine was down
  EXPECT_TRUE(after->banned(addr("10.5.1.1")));
  EXPECT_TRUE(after->banned(addr("fd00:5::99")));
  EXPECT_FALSE(after->banned(addr("10.5.1.2")));
  // The hour counts from the original ban, not from the reboot.
  clock->advance(57min);
  EXPECT_TRUE(after->banned(addr("10.5.1.1")));
  clock->advance(2min);
  EXPECT_FALSE(after->banned(addr("10.5.1.1")));
}

// Fills the database file with a table of its own, so a store capped at the file's current
// size hits SQLITE_FULL exactly as on a full disk, and frees it again on demand.
class Filler {
 public:
  explicit Filler(const std::string& path) { sqlite3_open(path.c_str(), &db_); }
  ~Filler() { sqlite3_close(db_); }
  void fill() { run("CREATE TABLE filler(b BLOB); INSERT INTO filler VALUES(zeroblob(200000));"); }
  void free_space() { run("DELETE FROM filler; PRAGMA wal_checkpoint(TRUNCATE);"); }
  std::uint32_t pages() {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_, "PRAGMA page_count", -1, &st, nullptr);
    sqlite3_step(st);
    auto n = static_cast<std::uint32_t>(sqlite3_column_int(st, 0));
    sqlite3_finalize(st);
    return n;
  }

 private:
  void run(const char* sql) { ASSERT_EQ(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), SQLITE_OK); }
  sqlite3* db_ = nullptr;
};

TEST_F(ReconcileTest, FullDiskKeepsTheBanAndSavesItWhenSpaceReturns) {
  { std::string e; ASSERT_TRUE(BanStore::open(db(), e)); }
  Filler filler(db());
  filler.fill();
  StoreOptions full;
  full.max_pages = filler.pages();
  auto manager = open_manager(pins, db(), clock, nullptr, test_config(), full);
  BanRequest big = request("10.5.1.1", 1h);
  big.sample = std::string(8000, 'x');  // more than the free pages can take
  auto out = manager->ban(big);
  ASSERT_TRUE(out.ok) << out.error;
  EXPECT_FALSE(out.stored);
  EXPECT_TRUE(manager->banned(addr("10.5.1.1")));
  EXPECT_EQ(manager->list().size(), 1u);
  EXPECT_EQ(manager->totals().unsaved, 1u);
  EXPECT_EQ(manager->history_count(prefix("10.5.1.1")), 1u);

  manager->sweep();  // still full: still held, still unsaved
  EXPECT_EQ(manager->totals().unsaved, 1u);
  EXPECT_TRUE(manager->banned(addr("10.5.1.1")));

  filler.free_space();
  manager->sweep();
  EXPECT_EQ(manager->totals().unsaved, 0u);
  manager.reset();
  // A fresh map (a reboot) gets the ban back from the store.
  auto after = open_manager(std::make_shared<FakeBanMap>(), db(), clock);
  EXPECT_EQ(after->reconciled().restored_to_map, 1u);
  EXPECT_TRUE(after->banned(addr("10.5.1.1")));
}

TEST_F(ReconcileTest, BanOnlyInTheMapIsRecoveredIntoTheStore) {
  std::string error;
  ASSERT_TRUE(pins->put({prefix("10.5.1.7"), clock->boot_ns() + 3'600'000'000'000ull, 5}, error));
  ASSERT_TRUE(pins->put({prefix("10.5.1.8"), clock->boot_ns() - 1, 0}, error));  // expired
  auto manager = open_manager(pins, db(), clock);
  EXPECT_EQ(manager->reconciled().recovered_to_store, 1u);
  EXPECT_EQ(manager->reconciled().expired, 1u);
  EXPECT_EQ(pins->entries().size(), 1u);
  manager.reset();
  auto after = open_manager(std::make_shared<FakeBanMap>(), db(), clock);
  ASSERT_EQ(after->list().size(), 1u);
  EXPECT_EQ(after->list()[0].prefix.str(), "10.5.1.7");
  EXPECT_EQ(after->list()[0].source, "map");
}

TEST_F(ReconcileTest, MapExpiryThatDriftedFromTheStoreIsRewritten) {
  {
    auto first = open_manager(pins, db(), clock);
    ASSERT_TRUE(first->ban(request("10.5.1.1", 1h)).ok);
  }
  std::string error;
  ASSERT_TRUE(pins->put({prefix("10.5.1.1"), 0, 0}, error));  // someone made it permanent
  auto second = open_manager(pins, db(), clock);
  EXPECT_EQ(second->reconciled().restored_to_map, 1u);
  clock->advance(61min);
  EXPECT_FALSE(second->banned(addr("10.5.1.1")));
}

}  // namespace
}  // namespace snigate::bans::testing
