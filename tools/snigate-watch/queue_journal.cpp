#include "queue_journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/remote_protocol.h"

namespace snigate::watch_tool {

using json = nlohmann::json;

namespace {

// Lines past this many dead ones beyond the live bans trigger a rewrite: amortised, each
// line is written about twice, and a file never holds much more than its live bans.
constexpr std::size_t kCompactSlack = 1024;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::optional<bans::BanRequest> from_json_object(const json& j) {
  if (j.is_discarded() || !j.is_object() || !j.contains("prefix")) return std::nullopt;
  auto prefix = net::Prefix::parse(j.value("prefix", ""));
  if (!prefix) return std::nullopt;
  bans::BanRequest r;
  r.prefix = *prefix;
  if (j.contains("duration_s")) r.duration = std::chrono::seconds(j["duration_s"].get<std::int64_t>());
  r.reason = j.value("reason", "");
  r.source = j.value("source", "");
  r.jail = j.value("jail", "");
  if (j.contains("matched_at_ms"))
    r.matched_at = bans::Clock::time_point(
        std::chrono::milliseconds(j["matched_at_ms"].get<std::int64_t>()));
  r.sample = j.value("sample", "");
  r.id = j.value("id", "");
  return r;
}

std::string held_line(const bans::BanRequest& r, const std::string& reason) {
  auto j = json::parse(to_json_line(r));
  j["held"] = reason;
  return dump(j);
}

// Replays the journal's lines into `state`. Returns how many lines the file had.
std::size_t replay(const std::string& path, QueueState& state, std::size_t& unreadable) {
  enum class Where { Pending, Held, Done };
  struct Entry {
    bans::BanRequest ban;
    Where where;
  };
  std::vector<Entry> entries;              // in the order first queued
  std::map<std::string, std::size_t> by_id;  // id -> entries index
  std::size_t lines = 0;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    ++lines;
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    try {
      if (j.is_object() && j.contains("op")) {
        auto it = by_id.find(j.at("id").get<std::string>());
        const auto op = j.at("op").get<std::string>();
        if (it == by_id.end()) continue;  // its ban was compacted away before this line
        auto& e = entries[it->second];
        if (op == "done") {
          e.where = Where::Done;
        } else if (op == "hold") {
          e.where = Where::Held;
          state.held_reason = j.at("reason").get<std::string>();
        } else if (op == "release") {
          if (e.where == Where::Held) e.where = Where::Pending;
        } else {
          ++unreadable;
        }
        continue;
      }
      auto ban = from_json_object(j);
      if (!ban) {
        ++unreadable;
        continue;
      }
      // Files of versions before ids were given: an id now, kept by the compaction below.
      if (ban->id.empty()) ban->id = control::random_nonce();
      if (by_id.count(ban->id)) continue;  // queued once, whatever the file repeats
      Where where = Where::Pending;
      if (auto held = j.find("held"); held != j.end() && held->is_string()) {
        where = Where::Held;
        state.held_reason = held->get<std::string>();
      }
      by_id.emplace(ban->id, entries.size());
      entries.push_back({std::move(*ban), where});
    } catch (const json::exception&) {
      ++unreadable;  // a key of the wrong type: a damaged line, like one that is not JSON
    }
  }
  for (auto& e : entries) {
    if (e.where == Where::Pending) state.pending.push_back(std::move(e.ban));
    else if (e.where == Where::Held) state.held.push_back(std::move(e.ban));
  }
  return lines;
}

}  // namespace

std::string to_json_line(const bans::BanRequest& r) {
  json j;
  j["prefix"] = r.prefix.str();
  if (r.duration) j["duration_s"] = r.duration->count();
  j["reason"] = r.reason;
  j["source"] = r.source;
  j["jail"] = r.jail;
  if (r.matched_at)
    j["matched_at_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                             r.matched_at->time_since_epoch())
                             .count();
  j["sample"] = r.sample;
  if (!r.id.empty()) j["id"] = r.id;
  return dump(j);
}

std::optional<bans::BanRequest> from_json_line(const std::string& line) {
  // A line of the wrong shape (a key of another type) is unreadable, like one that is not JSON.
  try {
    return from_json_object(json::parse(line, nullptr, false));
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

QueueJournal QueueJournal::open(const std::string& path, QueueState& state,
                                std::size_t& unreadable, std::string& error) {
  replay(path, state, unreadable);
  QueueJournal journal(path, -1, 0, 0);
  if (!journal.compact(state)) error = "cannot write " + path + ": " + std::strerror(errno);
  return journal;
}

QueueJournal::QueueJournal(std::string path, int fd, std::size_t lines, std::size_t size)
    : path_(std::move(path)), fd_(fd), lines_(lines), size_(size) {}

QueueJournal::QueueJournal(QueueJournal&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(other.fd_),
      lines_(other.lines_),
      size_(other.size_),
      broken_(other.broken_) {
  other.fd_ = -1;
}

QueueJournal& QueueJournal::operator=(QueueJournal&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    lines_ = other.lines_;
    size_ = other.size_;
    broken_ = other.broken_;
    other.fd_ = -1;
  }
  return *this;
}

QueueJournal::~QueueJournal() {
  if (fd_ < 0) return;
  ::fdatasync(fd_);
  ::close(fd_);
}

bool QueueJournal::append(const std::string& line) {
  const std::string text = line + "\n";
  const ssize_t n = fd_ < 0 ? -1 : ::write(fd_, text.data(), text.size());
  if (n == static_cast<ssize_t>(text.size())) {
    size_ += text.size();
    ++lines_;
    return true;
  }
  // Cut short (disk full): take the piece back, or the next line would be glued to it.
  if (n > 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0) size_ += static_cast<std::size_t>(n);
  broken_ = true;  // the line is missing from the file: the next compaction writes it
  return false;
}

bool QueueJournal::queued(const bans::BanRequest& ban) { return append(to_json_line(ban)); }

bool QueueJournal::done(const std::string& id) { return append(dump(json{{"op", "done"}, {"id", id}})); }

bool QueueJournal::hold(const std::string& id, const std::string& reason) {
  return append(dump(json{{"op", "hold"}, {"id", id}, {"reason", reason}}));
}

bool QueueJournal::release(const std::string& id) {
  return append(dump(json{{"op", "release"}, {"id", id}}));
}

bool QueueJournal::sync() { return fd_ >= 0 && ::fdatasync(fd_) == 0; }

bool QueueJournal::maybe_compact(const QueueState& state) {
  const std::size_t live = state.pending.size() + state.held.size();
  if (fd_ < 0) return compact(state);
  if (live == 0 && lines_ > 0) {
    // Nothing left: empty it in place, which is one atomic step.
    if (::ftruncate(fd_, 0) != 0) return false;
    lines_ = size_ = 0;
    return true;
  }
  if (!broken_ && lines_ <= 2 * live + kCompactSlack) return true;
  return compact(state);
}

bool QueueJournal::compact(const QueueState& state) {
  std::string data;
  for (const auto& r : state.pending) data += to_json_line(r) + "\n";
  for (const auto& r : state.held) data += held_line(r, state.held_reason) + "\n";
  const std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  // Renamed over the journal only once complete: a crash leaves the old or the new file.
  if (!ok || std::rename(tmp.c_str(), path_.c_str()) != 0) return false;
  int append_fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ >= 0) ::close(fd_);
  fd_ = append_fd;  // -1: appends fail (and say so) until a compaction opens it again
  if (fd_ < 0) return false;
  lines_ = state.pending.size() + state.held.size();
  size_ = data.size();
  broken_ = false;
  return true;
}

}  // namespace snigate::watch_tool
