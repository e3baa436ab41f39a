#pragma once
// Follows log files like `tail -F`, with inotify on their directories: starts at the end (or
// at the position saved for that file), holds a partial last line until it is complete,
// follows rotation by rename (drains the old file, and keeps draining it a while for writers
// that have not reopened yet) and by truncation (copytruncate: seen by the size, or by the
// first bytes changing when the file regrew past our offset before we looked), picks up files that appear
// later (globs in the file name too) and survives files that vanish. A file is one file by
// its device and inode, whatever it is called now: renamed to a name the glob still matches,
// it goes on from where it was, never again from 0. Only regular files are read, opened
// without blocking (a FIFO put in a log's place would hold open(2) until some writer came).
// A line longer than 1 MiB is cut: its first 1 MiB is handed out, the rest up to its newline
// is dropped (never read as a line of its own, which would let the writer forge one).
// Positions (device, inode, offset, the hash of the first bytes, whether inside a cut line)
// are saved to a state file, so a restart neither reads a line twice nor skips one.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace snigate::watch {

struct FollowerOptions {
  std::string state_file;   // empty: positions are not saved
  bool from_start = false;  // files without a saved position: read from the beginning
  std::chrono::seconds rotated_grace{10};  // how long a renamed-away file is still drained
  // Descriptors held at once (followed and renamed-away files): whoever can create files under
  // a glob must not be able to exhaust the daemon's descriptors, which its clients need too.
  std::size_t max_files = 256;
  // Bytes read from one file per scan: a huge backlog (a big file that appears, read from its
  // start) is read over many scans, so the watcher thread gets back to its stop and reload
  // checks between them instead of being held for the whole file.
  std::size_t read_budget = 1024 * 1024;
};

class Follower {
 public:
  using LineFn = std::function<void(const std::string& path, std::string_view line)>;

  // Throws std::system_error when inotify is unavailable.
  Follower(std::vector<std::string> patterns, FollowerOptions options, LineFn on_line);
  ~Follower();
  Follower(const Follower&) = delete;
  Follower& operator=(const Follower&) = delete;

  // inotify descriptor to poll() on; readable when something changed.
  int fd() const { return inotify_; }
  // Drains inotify, then reads what is new in every followed file, up to read_budget bytes of
  // each. Call when fd() turns readable, and once a second anyway as a safety net (events can
  // be coalesced or lost). Returns true when a file has more: call again soon.
  bool scan();
  void save_positions();

  std::vector<std::string> followed() const;  // paths currently open

 private:
  struct File;
  struct Saved {
    std::uint64_t dev = 0, ino = 0, offset = 0;
    bool in_cut_line = false;
    std::uint64_t head_size = 0, head_hash = 0;  // head_size 0: not known (older state file)
  };
  void load_positions();
  std::vector<std::string> expand() const;
  void open_file(const std::string& path, bool initial);
  const Saved* saved_for(const std::string& path, std::uint64_t dev, std::uint64_t ino) const;
  bool read_new(File& f, bool final);
  void add_dir_watch(const std::string& dir);

  std::vector<std::string> patterns_;
  FollowerOptions options_;
  LineFn on_line_;
  int inotify_ = -1;
  std::map<std::string, int> dir_watches_;
  std::map<std::string, std::unique_ptr<File>> files_;
  std::vector<std::unique_ptr<File>> rotated_;  // renamed away, still drained a while
  std::map<std::string, Saved> saved_;
  bool dirty_ = false;
  bool warned_full_ = false;
};

}  // namespace snigate::watch
