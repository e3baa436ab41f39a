// The SQLite store on its own: what it keeps across reopenings and what the history says.
#include <sqlite3.h>
#include <sys/stat.h>

#include <fstream>

#include "test_support.h"

namespace snigate::bans::testing {
namespace {

using namespace std::chrono_literals;

BanEntry entry(const char* p, Clock::time_point created) {
  BanEntry e;
  e.prefix = prefix(p);
  e.created = created;
  e.expires = created + 1h;
  e.reason = "5 failures";
  e.source = "jail:sshd";
  e.jail = "sshd";
  e.sample = "Failed password for root from 10.5.1.1";
  return e;
}

TEST(BanStore, KeepsBansAndHistoryAcrossReopening) {
  ScratchDir dir;
  const auto now = Clock::time_point(std::chrono::seconds(1'800'000'000));
  std::string error;
  {
    auto store = BanStore::open(dir.file("sub/dir/bans.db"), error);  // creates the directory
    ASSERT_TRUE(store) << error;
    ASSERT_TRUE(store->add(entry("10.5.1.1", now), error)) << error;
    ASSERT_TRUE(store->add(entry("fd00:5::/64", now), error)) << error;
    ASSERT_TRUE(store->lift(prefix("fd00:5::/64"), now + 1s, "unban", 7, error)) << error;
    ASSERT_TRUE(store->add(entry("10.5.1.1", now + 2s), error)) << error;  // replaces
  }
  auto store = BanStore::open(dir.file("sub/dir/bans.db"), error);
  ASSERT_TRUE(store) << error;
  auto active = store->active(error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].prefix.str(), "10.5.1.1");
  EXPECT_EQ(active[0].created, now + 2s);
  EXPECT_EQ(active[0].expires, now + 2s + 1h);
  EXPECT_EQ(active[0].jail, "sshd");
  EXPECT_EQ(active[0].offences, 2u);
  EXPECT_EQ(store->history_count(prefix("fd00:5::/64")), 1u);

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("sub/dir/bans.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT ended_by, drops FROM history WHERE prefix='fd00:5::/64'", -1, &st,
                     nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "unban");
  EXPECT_EQ(sqlite3_column_int(st, 1), 7);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

// A store the disk will not let be written still opens, so the daemon keeps its bans in
// force; every write says why it failed and tries the file again first.
// The store quotes log lines: only its owner reads it, whatever the umask, and a store an
// older version left world-readable is closed to the world (its group is the operator's).
TEST(BanStore, FilesAreReadableByTheOwnerOnly) {
  ScratchDir dir;
  const mode_t old_umask = ::umask(022);
  std::string error;
  {
    auto store = BanStore::open(dir.file("bans.db"), error);
    ASSERT_TRUE(store) << error;
    ASSERT_TRUE(store->add(entry("10.5.1.1", Clock::now()), error)) << error;
    for (const char* name : {"bans.db", "bans.db-wal", "bans.db-shm"}) {
      struct stat st {};
      ASSERT_EQ(::stat(dir.file(name).c_str(), &st), 0) << name;
      EXPECT_EQ(st.st_mode & 0777, 0600u) << name;
    }
  }
  ::chmod(dir.file("bans.db").c_str(), 0644);
  ASSERT_TRUE(BanStore::open(dir.file("bans.db"), error)) << error;
  ::umask(old_umask);
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("bans.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(BanStore, UnwritablePathOpensEmptyAndEveryWriteSaysWhy) {
  ScratchDir dir;
  std::string error;
  {
    auto blocker = BanStore::open(dir.file("file"), error);  // a file where a directory must be
    ASSERT_TRUE(blocker);
  }
  auto store = BanStore::open(dir.file("file/bans.db"), error);
  ASSERT_TRUE(store) << error;
  EXPECT_FALSE(store->writable());
  EXPECT_NE(store->problem().find("[bans] store"), std::string::npos) << store->problem();
  EXPECT_TRUE(store->active(error).empty());
  EXPECT_TRUE(error.empty()) << error;
  const auto now = Clock::time_point(std::chrono::seconds(1'800'000'000));
  EXPECT_FALSE(store->add(entry("10.5.1.1", now), error));
  EXPECT_NE(error.find(dir.file("file/bans.db")), std::string::npos) << error;
  EXPECT_FALSE(store->writable());
}

TEST(BanStore, FileThatIsNotADatabaseIsAClearError) {
  ScratchDir dir;
  std::ofstream(dir.file("bans.db")) << "not a database, but long enough to have a header that "
                                        "SQLite reads and rejects as such................";
  std::string error;
  EXPECT_FALSE(BanStore::open(dir.file("bans.db"), error));
  EXPECT_NE(error.find("ban store"), std::string::npos) << error;
  EXPECT_NE(error.find("not a database"), std::string::npos) << error;
}

}  // namespace
}  // namespace snigate::bans::testing
