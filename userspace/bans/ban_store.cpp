#include "bans/ban_store.h"

#include <sqlite3.h>

#include <filesystem>

namespace snigate::bans {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS history(
  id INTEGER PRIMARY KEY,
  prefix TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER,            -- NULL: permanent
  reason TEXT NOT NULL DEFAULT '',
  source TEXT NOT NULL DEFAULT '',
  jail TEXT NOT NULL DEFAULT '',
  sample TEXT NOT NULL DEFAULT '',
  matched_at_ms INTEGER,
  ended_ms INTEGER,              -- NULL: still in force
  ended_by TEXT,                 -- unban | expired | replaced
  drops INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS history_prefix ON history(prefix);
CREATE TABLE IF NOT EXISTS bans(
  prefix TEXT PRIMARY KEY,
  history_id INTEGER NOT NULL REFERENCES history(id));
)sql";

std::int64_t to_ms(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
Clock::time_point from_ms(std::int64_t ms) {
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(ms)));
}

// One prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  void text(int i, std::string_view s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
  }
  void integer(int i, std::int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void maybe_time(int i, const std::optional<Clock::time_point>& t) {
    if (t) integer(i, to_ms(*t)); else sqlite3_bind_null(stmt_, i);
  }
  int step() { return rc_ = sqlite3_step(stmt_); }
  std::string col_text(int i) const {
    auto p = sqlite3_column_text(stmt_, i);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  std::int64_t col_int(int i) const { return sqlite3_column_int64(stmt_, i); }
  std::optional<Clock::time_point> col_time(int i) const {
    if (sqlite3_column_type(stmt_, i) == SQLITE_NULL) return std::nullopt;
    return from_ms(col_int(i));
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

std::string advice(sqlite3* db, const std::string& path, std::string_view doing) {
  int code = sqlite3_errcode(db);
  std::string msg = "ban store " + path + ": " + std::string(doing) + " failed: " + sqlite3_errmsg(db);
  if (code == SQLITE_FULL) msg += " (free space on that disk; bans stay in force in the map)";
  if (code == SQLITE_READONLY || code == SQLITE_CANTOPEN || code == SQLITE_PERM)
    msg += " (make the file and its directory writable by snigated, or set [bans] store)";
  return msg;
}

}  // namespace

std::unique_ptr<BanStore> BanStore::open(const std::string& path, std::string& error,
                                         const StoreOptions& options) {
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    error = "ban store " + path + ": cannot open: " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)) +
            " (check that the directory exists and is writable, or set [bans] store)";
    sqlite3_close(db);
    return nullptr;
  }
  std::unique_ptr<BanStore> store(new BanStore(db, path));
  sqlite3_busy_timeout(db, 2000);
  // WAL: readers never block the writer; synchronous=NORMAL is durable across a daemon crash
  // and loses at most the last commits on power loss, which reconciliation recovers from the
  // pinned map.
  if (!store->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", error) ||
      !store->exec(kSchema, error))
    return nullptr;
  if (options.max_pages &&
      !store->exec(("PRAGMA max_page_count=" + std::to_string(options.max_pages)).c_str(), error))
    return nullptr;
  return store;
}

BanStore::~BanStore() { sqlite3_close(db_); }

bool BanStore::exec(const char* sql, std::string& error) const {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) == SQLITE_OK) return true;
  sqlite3_free(msg);
  error = advice(db_, path_, "write");
  return false;
}

bool BanStore::add(const BanEntry& e, std::string& error) {
  if (!exec("BEGIN IMMEDIATE", error)) return false;
  auto fail = [&](std::string_view doing) {
    error = advice(db_, path_, doing);
    std::string ignored;
    exec("ROLLBACK", ignored);
    return false;
  };
  const auto prefix = e.prefix.str();
  {
    Stmt end(db_,
             "UPDATE history SET ended_ms=?1, ended_by='replaced' "
             "WHERE id=(SELECT history_id FROM bans WHERE prefix=?2)");
    end.integer(1, to_ms(e.created));
    end.text(2, prefix);
    if (!end.ok() || end.step() != SQLITE_DONE) return fail("ending the previous ban");
  }
  {
    Stmt ins(db_,
             "INSERT INTO history(prefix, created_ms, expires_ms, reason, source, jail, sample,"
             " matched_at_ms, drops) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)");
    ins.text(1, prefix);
    ins.integer(2, to_ms(e.created));
    ins.maybe_time(3, e.expires);
    ins.text(4, e.reason);
    ins.text(5, e.source);
    ins.text(6, e.jail);
    ins.text(7, e.sample);
    ins.maybe_time(8, e.matched_at);
    ins.integer(9, static_cast<std::int64_t>(e.drops));
    if (!ins.ok() || ins.step() != SQLITE_DONE) return fail("recording the ban");
  }
  {
    Stmt cur(db_, "INSERT OR REPLACE INTO bans(prefix, history_id) VALUES(?1, last_insert_rowid())");
    cur.text(1, prefix);
    if (!cur.ok() || cur.step() != SQLITE_DONE) return fail("recording the ban");
  }
  if (!exec("COMMIT", error)) return fail("committing the ban");
  return true;
}

bool BanStore::lift(const net::Prefix& prefix, Clock::time_point when, std::string_view why,
                    std::uint64_t drops, std::string& error) {
  if (!exec("BEGIN IMMEDIATE", error)) return false;
  auto fail = [&](std::string_view doing) {
    error = advice(db_, path_, doing);
    std::string ignored;
    exec("ROLLBACK", ignored);
    return false;
  };
  const auto text = prefix.str();
  {
    Stmt end(db_,
             "UPDATE history SET ended_ms=?1, ended_by=?2, drops=MAX(drops, ?3) "
             "WHERE id=(SELECT history_id FROM bans WHERE prefix=?4)");
    end.integer(1, to_ms(when));
    end.text(2, why);
    end.integer(3, static_cast<std::int64_t>(drops));
    end.text(4, text);
    if (!end.ok() || end.step() != SQLITE_DONE) return fail("ending the ban");
  }
  {
    Stmt del(db_, "DELETE FROM bans WHERE prefix=?1");
    del.text(1, text);
    if (!del.ok() || del.step() != SQLITE_DONE) return fail("ending the ban");
  }
  if (!exec("COMMIT", error)) return fail("committing the unban");
  return true;
}

std::vector<BanEntry> BanStore::active(std::string& error) const {
  std::vector<BanEntry> out;
  Stmt q(db_,
         "SELECT h.prefix, h.created_ms, h.expires_ms, h.reason, h.source, h.jail, h.sample,"
         " h.matched_at_ms, h.drops, (SELECT COUNT(*) FROM history c WHERE c.prefix=h.prefix)"
         " FROM bans b JOIN history h ON h.id=b.history_id ORDER BY h.prefix");
  if (!q.ok()) {
    error = advice(db_, path_, "reading bans");
    return out;
  }
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    auto prefix = net::Prefix::parse(q.col_text(0));
    if (!prefix) continue;  // written by us, so only a hand edit gets here; skip it
    BanEntry e;
    e.prefix = *prefix;
    e.created = from_ms(q.col_int(1));
    e.expires = q.col_time(2);
    e.reason = q.col_text(3);
    e.source = q.col_text(4);
    e.jail = q.col_text(5);
    e.sample = q.col_text(6);
    e.matched_at = q.col_time(7);
    e.drops = static_cast<std::uint64_t>(q.col_int(8));
    e.offences = static_cast<std::uint32_t>(q.col_int(9));
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) error = advice(db_, path_, "reading bans");
  return out;
}

std::uint32_t BanStore::history_count(const net::Prefix& prefix) const {
  Stmt q(db_, "SELECT COUNT(*) FROM history WHERE prefix=?1");
  q.text(1, prefix.str());
  if (!q.ok() || q.step() != SQLITE_ROW) return 0;
  return static_cast<std::uint32_t>(q.col_int(0));
}

}  // namespace snigate::bans
