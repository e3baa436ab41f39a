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
  // Creates the file and its directory when missing. Null with advice on failure.
  static std::unique_ptr<BanStore> open(const std::string& path, std::string& error,
                                        const StoreOptions& options = {});
  ~BanStore();
  BanStore(const BanStore&) = delete;
  BanStore& operator=(const BanStore&) = delete;

  // Records a ban in force (replacing one for the same prefix) and a history row, atomically.
  bool add(const BanEntry& entry, std::string& error);
  // Ends the ban in force for `prefix`: `why` is "unban", "expired" or "replaced".
  bool lift(const net::Prefix& prefix, Clock::time_point when, std::string_view why,
            std::uint64_t drops, std::string& error);
  std::vector<BanEntry> active(std::string& error) const;
  std::uint32_t history_count(const net::Prefix& prefix) const;
  const std::string& path() const { return path_; }

 private:
  BanStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  bool exec(const char* sql, std::string& error) const;
  sqlite3* db_;
  std::string path_;
};

}  // namespace snigate::bans
