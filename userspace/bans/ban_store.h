#pragma once
// The SQLite store: `bans` holds the bans in force, `history` every ban ever made (reason,
// source, jail, sample, matched_at, how it ended, drops), so bans survive restarts and
// reboots and repeat offenders can be counted.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bans/ban.h"
#include "net/prefix.h"

struct sqlite3;

namespace snigate::bans {

struct StoreOptions {
  // Caps the database at this many pages (PRAGMA max_page_count); 0 = no cap. A cap makes
  // SQLite answer SQLITE_FULL exactly as a full disk does.
  std::uint32_t max_pages = 0;
};

class BanStore {
 public:
  // Creates the file and its directory when missing. When the disk refuses writing
  // (read-only, full, no permission), opens what can still be read instead: the existing file
  // read-only, or an empty database in memory; writable() is then false, problem() says why,
  // and every write first tries to reopen the file for writing, so nothing is lost that the
  // caller retries. Null with advice only when the file cannot be used at all (not a
  // database, damaged).
  static std::unique_ptr<BanStore> open(const std::string& path, std::string& error,
                                        const StoreOptions& options = {});
  ~BanStore();
  BanStore(const BanStore&) = delete;
  BanStore& operator=(const BanStore&) = delete;

  // Records a ban in force (replacing one for the same prefix) and a history row, atomically.
  bool add(const BanEntry& entry, std::string& error);
  // add() for many bans in one transaction (one fsync): all or none.
  bool add_many(const std::vector<BanEntry>& entries, std::string& error);
  // Ends the ban in force for `prefix`: `why` is "unban", "expired" or "replaced".
  bool lift(const net::Prefix& prefix, Clock::time_point when, std::string_view why,
            std::uint64_t drops, std::string& error);
  struct Lift {
    net::Prefix prefix;
    Clock::time_point when;
    std::string why;
    std::uint64_t drops = 0;
  };
  // lift() for many prefixes in one transaction (one fsync): all or none.
  bool lift_many(const std::vector<Lift>& lifts, std::string& error);
  std::vector<BanEntry> active(std::string& error) const;
  std::uint32_t history_count(const net::Prefix& prefix) const;
  // history_count() of each, with one prepared statement.
  std::vector<std::uint32_t> history_counts(const std::vector<net::Prefix>& prefixes) const;
  const std::string& path() const { return path_; }
  bool writable() const { return problem_.empty(); }
  const std::string& problem() const { return problem_; }

 private:
  BanStore(sqlite3* db, std::string path, StoreOptions options, std::string problem)
      : db_(db), path_(std::move(path)), options_(options), problem_(std::move(problem)) {}
  bool exec(const char* sql, std::string& error) const;
  bool reopen_writable(std::string& error);
  // A write transaction: reopens a store that refused writes first.
  bool begin_write(std::string& error);
  // The statements of one lift, inside a transaction the caller opened.
  bool lift_in_transaction(const Lift& lift, std::string& error);
  // Reports what failed while `doing`, rolls the transaction back; always false.
  bool rollback(std::string_view doing, std::string& error) const;
  sqlite3* db_;
  std::string path_;
  StoreOptions options_;
  std::string problem_;  // empty while writable
};

}  // namespace snigate::bans
