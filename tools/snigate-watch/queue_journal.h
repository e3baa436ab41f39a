#pragma once
// The outbox's file: an append-only journal of JSON lines, so a push costs one write(2)
// whatever the backlog, where rewriting the whole queue on every push and pop made a burst
// quadratic. Lines:
//   a ban (to_json_line; "held":REASON when refused for the channel's sake)  queued
//   {"op":"done","id":ID}                  answered by the edge: accepted, or refused for good
//   {"op":"hold","id":ID,"reason":WHY}     refused for the channel's sake: held
//   {"op":"release","id":ID}               held, queued again
// A compacted file holds ban lines only, which is also the whole format of the files written
// before the journal (one line per ban, rewritten each time): those load as they are.
// Replay keeps each id once (the first line naming it), so nothing comes back twice.
#include <cstddef>
#include <deque>
#include <optional>
#include <string>

#include "bans/ban.h"

namespace snigate::watch_tool {

struct QueueState {
  std::deque<bans::BanRequest> pending;  // in the order they were queued
  std::deque<bans::BanRequest> held;
  std::string held_reason;  // the latest hold's
};

class QueueJournal {
 public:
  // Replays `path` (missing: empty) into `state`, gives an id to a ban that has none (files
  // of old versions), then compacts it, so what was dead or unreadable is gone from the
  // start. `unreadable` counts lines that were skipped. When the file cannot be written,
  // `error` says why and appends fail until a compaction succeeds; `state` is loaded anyway.
  static QueueJournal open(const std::string& path, QueueState& state, std::size_t& unreadable,
                           std::string& error);
  QueueJournal(QueueJournal&& other) noexcept;
  QueueJournal& operator=(QueueJournal&& other) noexcept;
  ~QueueJournal();

  // Each one write(2) of a whole line, so a crash or kill right after loses nothing; a write
  // the disk cuts short is taken back. False when the disk refused.
  bool queued(const bans::BanRequest& ban);
  bool done(const std::string& id);
  bool hold(const std::string& id, const std::string& reason);
  bool release(const std::string& id);
  // fdatasync: what was written survives a power loss too (the sender calls it once per batch,
  // not once per push).
  bool sync();
  // Rewrites the file as `state` (aside, fsynced, renamed) once most of its lines are dead
  // or the last write failed; empties it in place when nothing is left. False when that
  // failed (the journal goes on as it was).
  bool maybe_compact(const QueueState& state);
  bool compact(const QueueState& state);

  std::size_t lines() const { return lines_; }

 private:
  QueueJournal(std::string path, int fd, std::size_t lines, std::size_t size);
  bool append(const std::string& line);

  std::string path_;
  int fd_ = -1;
  std::size_t lines_ = 0;  // in the file now
  std::size_t size_ = 0;   // bytes, where the next line goes
  bool broken_ = false;    // a line could not be written: rewrite from memory
};

// One ban as a JSON line, and back (nullopt for a line that is not one).
std::string to_json_line(const bans::BanRequest& request);
std::optional<bans::BanRequest> from_json_line(const std::string& line);

}  // namespace snigate::watch_tool
