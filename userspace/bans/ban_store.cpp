#include "bans/ban_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>

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
  // Ready to bind and step again (a statement prepared once, run for many rows).
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
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

// The statements of one add, prepared once per transaction: preparing them costs more than
// running them, which matters for 100,000 bans in one go.
struct AddStatements {
  explicit AddStatements(sqlite3* db)
      : end(db, "UPDATE history SET ended_ms=?1, ended_by='replaced' "
                "WHERE id=(SELECT history_id FROM bans WHERE prefix=?2)"),
        ins(db, "INSERT INTO history(prefix, created_ms, expires_ms, reason, source, jail, sample,"
                " matched_at_ms, drops) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)"),
        cur(db, "INSERT OR REPLACE INTO bans(prefix, history_id) VALUES(?1, last_insert_rowid())") {}
  bool ok() const { return end.ok() && ins.ok() && cur.ok(); }
  Stmt end, ins, cur;
};

// Records one ban (ending the one it replaces); on failure `doing` names the step.
bool add_one(AddStatements& s, const BanEntry& e, const char*& doing) {
  const auto prefix = e.prefix.str();
  s.end.reset();
  s.end.integer(1, to_ms(e.created));
  s.end.text(2, prefix);
  doing = "ending the previous ban";
  if (s.end.step() != SQLITE_DONE) return false;
  s.ins.reset();
  s.ins.text(1, prefix);
  s.ins.integer(2, to_ms(e.created));
  s.ins.maybe_time(3, e.expires);
  s.ins.text(4, e.reason);
  s.ins.text(5, e.source);
  s.ins.text(6, e.jail);
  s.ins.text(7, e.sample);
  s.ins.maybe_time(8, e.matched_at);
  s.ins.integer(9, static_cast<std::int64_t>(e.drops));
  doing = "recording the ban";
  if (s.ins.step() != SQLITE_DONE) return false;
  s.cur.reset();
  s.cur.text(1, prefix);
  return s.cur.step() == SQLITE_DONE;
}

std::string advice(sqlite3* db, const std::string& path, std::string_view doing) {
  int code = sqlite3_errcode(db);
  std::string msg = "ban store " + path + ": " + std::string(doing) + " failed: " + sqlite3_errmsg(db);
  if (code == SQLITE_FULL) msg += " (free space on that disk; bans stay in force in the map)";
  if (code == SQLITE_READONLY || code == SQLITE_CANTOPEN || code == SQLITE_PERM)
    msg += " (make the file and its directory writable by snigated, or set [bans] store)";
  return msg;
}

// Errors that come from the disk refusing to write, not from the file itself.
bool refused_by_disk(int code) {
  switch (code & 0xff) {
    case SQLITE_READONLY: case SQLITE_CANTOPEN: case SQLITE_PERM: case SQLITE_FULL:
    case SQLITE_IOERR:
      return true;
    default:
      return false;
  }
}

bool exec_on(sqlite3* db, const char* sql) {
  return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
}

// The store quotes log lines (samples) and says who was banned: readable by its owner only,
// like the logs it quotes. Created 0600 whatever the umask; a store an older version made
// world-readable loses the world's bits (a group the operator chose keeps its). SQLite gives
// the -wal and -shm files the database file's mode.
void keep_private(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ::close(fd);
    return;
  }
  struct stat st {};
  if (errno == EEXIST && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0007))
    ::chmod(path.c_str(), st.st_mode & 0770);
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::string side = path + suffix;
    if (::stat(side.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0007))
      ::chmod(side.c_str(), st.st_mode & 0770);
  }
}

// A connection ready for writing (WAL, schema, page cap), or null with advice and the
// SQLite error code.
sqlite3* open_writable(const std::string& path, const StoreOptions& options, std::string& error,
                       int& code) {
  std::error_code ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  keep_private(path);
  sqlite3* db = nullptr;
  code = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (code != SQLITE_OK) {
    error = "ban store " + path + ": cannot open: " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(code)) +
            " (check that the directory exists and is writable, or set [bans] store)";
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, 2000);
  // WAL: readers never block the writer; synchronous=NORMAL is durable across a daemon crash
  // and loses at most the last commits on power loss, which reconciliation recovers from the
  // pinned map.
  const std::string cap =
      options.max_pages ? "PRAGMA max_page_count=" + std::to_string(options.max_pages) + ";" : "";
  if (!exec_on(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;") ||
      !exec_on(db, kSchema) || !exec_on(db, cap.c_str())) {
    code = sqlite3_errcode(db);
    error = advice(db, path, "opening for writing");
    // SQLite says only "unable to open database file" when it cannot make the WAL's files.
    struct statvfs fs {};
    if (::statvfs(dir.empty() ? "." : dir.c_str(), &fs) == 0 && (fs.f_flag & ST_RDONLY))
      error += "; " + dir.string() + " is on a read-only file system";
    sqlite3_close(db);
    return nullptr;
  }
  // SQLite quietly opens a write-protected file read-only instead.
  if (sqlite3_db_readonly(db, "main") == 1) {
    code = SQLITE_READONLY;
    error = "ban store " + path + ": the file or its disk is read-only (make the file and its "
            "directory writable by snigated, or set [bans] store)";
    sqlite3_close(db);
    return nullptr;
  }
  return db;
}

// A path as a file: URI (RFC 3986 escapes for the characters URIs reserve).
std::string file_uri(const std::string& path, const char* query) {
  std::string uri = "file:";
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      static constexpr char kHex[] = "0123456789ABCDEF";
      uri += '%';
      uri += kHex[static_cast<unsigned char>(c) >> 4];
      uri += kHex[c & 15];
    } else {
      uri += c;
    }
  }
  return uri + "?" + query;
}

// What can be read while the disk refuses writing: the existing file read-only (with its
// WAL when the -shm is there to share), else immutable (a WAL database has no -shm to make
// on a read-only disk); when there is no file, an empty database in memory.
sqlite3* open_readable(const std::string& path) {
  sqlite3* db = nullptr;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK &&
        exec_on(db, kSchema))
      return db;
    sqlite3_close(db);
    return nullptr;
  }
  for (const char* query : {"mode=ro", "immutable=1"}) {
    if (sqlite3_open_v2(file_uri(path, query).c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
                        nullptr) == SQLITE_OK &&
        exec_on(db, "SELECT COUNT(*) FROM bans"))
      return db;
    sqlite3_close(db);
    db = nullptr;
  }
  return nullptr;
}

}  // namespace

std::unique_ptr<BanStore> BanStore::open(const std::string& path, std::string& error,
                                         const StoreOptions& options) {
  int code = SQLITE_OK;
  std::string problem;
  if (sqlite3* db = open_writable(path, options, problem, code))
    return std::unique_ptr<BanStore>(new BanStore(db, path, options, {}));
  if (!refused_by_disk(code)) {
    error = problem;
    return nullptr;
  }
  sqlite3* db = open_readable(path);
  if (!db) {
    error = problem + "; and the existing file cannot be read either";
    return nullptr;
  }
  return std::unique_ptr<BanStore>(new BanStore(db, path, options, problem));
}

bool BanStore::reopen_writable(std::string& error) {
  int code = SQLITE_OK;
  std::string problem;
  sqlite3* db = open_writable(path_, options_, problem, code);
  if (!db) {
    error = problem_ = problem;
    return false;
  }
  sqlite3_close(db_);
  db_ = db;
  problem_.clear();
  return true;
}

BanStore::~BanStore() { sqlite3_close(db_); }

bool BanStore::exec(const char* sql, std::string& error) const {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) == SQLITE_OK) return true;
  sqlite3_free(msg);
  error = advice(db_, path_, "write");
  return false;
}

bool BanStore::begin_write(std::string& error) {
  if (!writable() && !reopen_writable(error)) return false;
  return exec("BEGIN IMMEDIATE", error);
}

bool BanStore::rollback(std::string_view doing, std::string& error) const {
  error = advice(db_, path_, doing);
  std::string ignored;
  exec("ROLLBACK", ignored);
  return false;
}

bool BanStore::add(const BanEntry& e, std::string& error) { return add_many({e}, error); }

bool BanStore::add_many(const std::vector<BanEntry>& entries, std::string& error) {
  if (entries.empty()) return true;
  if (!begin_write(error)) return false;
  AddStatements statements(db_);
  if (!statements.ok()) return rollback("preparing to record bans", error);
  const char* doing = "";
  for (const auto& e : entries)
    if (!add_one(statements, e, doing)) return rollback(doing, error);
  if (!exec("COMMIT", error)) return rollback("committing the ban", error);
  return true;
}

bool BanStore::lift(const net::Prefix& prefix, Clock::time_point when, std::string_view why,
                    std::uint64_t drops, std::string& error) {
  return lift_many({Lift{prefix, when, std::string(why), drops}}, error);
}

bool BanStore::lift_many(const std::vector<Lift>& lifts, std::string& error) {
  if (lifts.empty()) return true;
  if (!begin_write(error)) return false;
  for (const auto& lift : lifts)
    if (!lift_in_transaction(lift, error)) return false;
  if (!exec("COMMIT", error)) return rollback("committing the unban", error);
  return true;
}

bool BanStore::lift_in_transaction(const Lift& lift, std::string& error) {
  const auto text = lift.prefix.str();
  {
    Stmt end(db_,
             "UPDATE history SET ended_ms=?1, ended_by=?2, drops=MAX(drops, ?3) "
             "WHERE id=(SELECT history_id FROM bans WHERE prefix=?4)");
    end.integer(1, to_ms(lift.when));
    end.text(2, lift.why);
    end.integer(3, static_cast<std::int64_t>(lift.drops));
    end.text(4, text);
    if (!end.ok() || end.step() != SQLITE_DONE) return rollback("ending the ban", error);
  }
  Stmt del(db_, "DELETE FROM bans WHERE prefix=?1");
  del.text(1, text);
  if (!del.ok() || del.step() != SQLITE_DONE) return rollback("ending the ban", error);
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
  return history_counts({prefix}).front();
}

std::vector<std::uint32_t> BanStore::history_counts(const std::vector<net::Prefix>& prefixes) const {
  std::vector<std::uint32_t> out(prefixes.size(), 0);
  Stmt q(db_, "SELECT COUNT(*) FROM history WHERE prefix=?1");
  if (!q.ok()) return out;
  for (std::size_t i = 0; i < prefixes.size(); ++i) {
    q.reset();
    q.text(1, prefixes[i].str());
    if (q.step() == SQLITE_ROW) out[i] = static_cast<std::uint32_t>(q.col_int(0));
  }
  return out;
}

}  // namespace snigate::bans
