#include "watch/follower.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include <spdlog/spdlog.h>

#include "watch/line_splitter.h"
#include "watch/private_file.h"

namespace snigate::watch {

namespace {

constexpr std::size_t kChunk = 64 * 1024;
// The file's first bytes, kept to tell a copytruncate that regrew past our offset before we
// looked (the size alone cannot) from plain growth: log lines start with their timestamp.
constexpr std::size_t kHead = 128;
// The state file's first line; files without it hold "dev ino offset path" rows.
constexpr std::string_view kStateHeader = "# snigate-watch positions 2";

std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

std::string parent_dir(const std::string& pattern) {
  auto dir = std::filesystem::path(pattern).parent_path().string();
  return dir.empty() ? "." : dir;
}

}  // namespace

struct Follower::File {
  std::string path;
  int fd = -1;
  std::uint64_t dev = 0, ino = 0;
  LineSplitter lines;  // its consumed(): just after the last line handed out (or dropped)
  std::string head;    // the first kHead bytes as last seen
  std::chrono::steady_clock::time_point last_growth = std::chrono::steady_clock::now();
  ~File() {
    if (fd >= 0) ::close(fd);
  }
};

Follower::Follower(std::vector<std::string> patterns, FollowerOptions options, LineFn on_line)
    : patterns_(std::move(patterns)), options_(std::move(options)), on_line_(std::move(on_line)) {
  inotify_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_ < 0) throw std::system_error(errno, std::generic_category(), "inotify_init1");
  load_positions();
  for (const auto& p : patterns_) add_dir_watch(parent_dir(p));
  for (const auto& path : expand()) open_file(path, true);
  if (dirty_) save_positions();
}

Follower::~Follower() {
  if (dirty_) save_positions();
  if (inotify_ >= 0) ::close(inotify_);
}

void Follower::add_dir_watch(const std::string& dir) {
  if (dir_watches_.count(dir)) return;
  int wd = ::inotify_add_watch(inotify_, dir.c_str(),
                               IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_MODIFY |
                                   IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF);
  if (wd >= 0) dir_watches_[dir] = wd;  // a missing directory is retried on every scan
}

std::vector<std::string> Follower::expand() const {
  std::set<std::string> out;
  for (const auto& pattern : patterns_) {
    glob_t g{};
    if (::glob(pattern.c_str(), 0, nullptr, &g) == 0)
      for (std::size_t i = 0; i < g.gl_pathc; ++i) {
        struct stat st {};
        if (::stat(g.gl_pathv[i], &st) == 0 && S_ISREG(st.st_mode)) out.insert(g.gl_pathv[i]);
      }
    ::globfree(&g);
  }
  return {out.begin(), out.end()};
}

const Follower::Saved* Follower::saved_for(const std::string& path, std::uint64_t dev,
                                           std::uint64_t ino) const {
  if (auto it = saved_.find(path); it != saved_.end() && it->second.dev == dev && it->second.ino == ino)
    return &it->second;
  for (const auto& [other, s] : saved_)  // renamed while we were down
    if (s.dev == dev && s.ino == ino) return &s;
  return nullptr;
}

void Follower::open_file(const std::string& path, bool initial) {
  // O_NONBLOCK: the glob's stat and this open race, and open(2) of a FIFO waits for a writer.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return;  // vanished between glob and open, or unreadable: retried next scan
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {  // what was opened, not what was globbed
    ::close(fd);
    return;
  }
  auto dev = static_cast<std::uint64_t>(st.st_dev), ino = static_cast<std::uint64_t>(st.st_ino);
  // The same file under another name (renamed to one the glob matches, or a hard link) is
  // followed once, from where it was.
  for (const auto& [other, f] : files_)
    if (f->dev == dev && f->ino == ino) {
      ::close(fd);
      return;
    }
  for (auto it = rotated_.begin(); it != rotated_.end(); ++it)
    if ((*it)->dev == dev && (*it)->ino == ino) {
      ::close(fd);
      (*it)->path = path;
      files_[path] = std::move(*it);
      rotated_.erase(it);
      dirty_ = true;
      return;
    }
  if (files_.size() + rotated_.size() >= options_.max_files) {
    ::close(fd);
    if (!std::exchange(warned_full_, true))
      spdlog::warn("watch: not following {}: {} files are open for {}, the most one jail holds; "
                   "is someone creating files in the log directory?", path, options_.max_files,
                   patterns_.front());
    return;
  }
  auto f = std::make_unique<File>();
  f->path = path;
  f->fd = fd;
  f->dev = dev;
  f->ino = ino;
  char head[kHead];
  if (auto n = ::pread(fd, head, sizeof head, 0); n > 0) f->head.assign(head, static_cast<std::size_t>(n));
  const Saved* saved = saved_for(path, dev, ino);
  // Same inode, but a copytruncate while we were down may have regrown it past the offset,
  // or the inode may be a new file's: the first bytes tell.
  bool same_start = saved && (saved->head_size == 0 ||
                              (f->head.size() >= saved->head_size &&
                               fnv1a(std::string_view(f->head).substr(0, saved->head_size)) ==
                                   saved->head_hash));
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (saved && same_start && saved->offset <= size) {
    f->lines.reset(saved->offset, saved->in_cut_line);  // where the last run stopped
  } else if (initial && !saved && !saved_.count(path) && !options_.from_start) {
    f->lines.reset(size);  // first time we see this file: only new lines count
  } else {
    f->lines.reset(0);  // appeared while we ran, or replaced while we were down: all of it is new
  }
  dirty_ = true;
  files_[path] = std::move(f);
}

bool Follower::read_new(File& f, bool final) {  // true: read_budget spent, more to read
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return false;
  auto size = static_cast<std::uint64_t>(st.st_size);
  char buf[kChunk];
  auto head_n = ::pread(f.fd, buf, kHead, 0);
  std::string_view head(buf, head_n > 0 ? static_cast<std::size_t>(head_n) : 0);
  auto read_to = [&] { return f.lines.consumed() + f.lines.pending(); };
  bool truncated = size < read_to() || head.size() < f.head.size() ||
                   head.substr(0, f.head.size()) != f.head;
  if (truncated && read_to() > 0) {  // copytruncate: all of it is new
    f.lines.reset(0);
    dirty_ = true;
  }
  f.head = head;
  auto deliver = [&](std::string_view line) { on_line_(f.path, line); };
  const auto before = f.lines.consumed();
  std::size_t budget = options_.read_budget;
  bool more = false;
  for (;;) {
    if (budget == 0) {
      more = true;
      break;
    }
    ssize_t n = ::pread(f.fd, buf, std::min(sizeof buf, budget), static_cast<off_t>(read_to()));
    if (n <= 0) break;
    budget -= static_cast<std::size_t>(n);
    f.last_growth = std::chrono::steady_clock::now();
    f.lines.feed(std::string_view(buf, static_cast<std::size_t>(n)), deliver);
  }
  // The writer has moved on: the last line is complete (once all of it is read).
  if (final && !more) f.lines.flush(deliver);
  if (f.lines.consumed() != before) dirty_ = true;
  return more;
}

bool Follower::scan() {
  bool more = false;
  char events[4096];
  while (::read(inotify_, events, sizeof events) > 0) {
  }
  for (const auto& p : patterns_) add_dir_watch(parent_dir(p));

  // Renamed away, replaced or deleted: drain what the old file still holds, then keep
  // draining it for a while, since a writer keeps appending until it reopens.
  for (auto it = files_.begin(); it != files_.end();) {
    struct stat st {};
    bool same = ::stat(it->first.c_str(), &st) == 0 &&
                static_cast<std::uint64_t>(st.st_dev) == it->second->dev &&
                static_cast<std::uint64_t>(st.st_ino) == it->second->ino;
    if (same) {
      ++it;
      continue;
    }
    more |= read_new(*it->second, false);
    it->second->last_growth = std::chrono::steady_clock::now();
    saved_.erase(it->first);
    rotated_.push_back(std::move(it->second));
    it = files_.erase(it);
    dirty_ = true;
  }
  for (const auto& path : expand())
    if (!files_.count(path)) open_file(path, false);
  for (auto& [path, f] : files_) more |= read_new(*f, false);
  auto now = std::chrono::steady_clock::now();
  for (auto it = rotated_.begin(); it != rotated_.end();) {
    bool left = read_new(**it, false);
    more |= left;
    if (!left && now - (*it)->last_growth >= options_.rotated_grace) {
      read_new(**it, true);
      it = rotated_.erase(it);
    } else {
      ++it;
    }
  }
  if (dirty_) save_positions();
  return more;
}

void Follower::load_positions() {
  if (options_.state_file.empty()) return;
  std::ifstream in(options_.state_file);
  std::string line;
  bool v2 = false;
  while (std::getline(in, line)) {
    if (line == kStateHeader) {
      v2 = true;
      continue;
    }
    std::istringstream row(line);
    Saved s;
    std::string path;
    if (!(row >> s.dev >> s.ino >> s.offset)) continue;
    if (v2 && !(row >> s.in_cut_line >> s.head_size >> s.head_hash)) continue;
    row.get();
    std::getline(row, path);
    if (!path.empty()) saved_[path] = s;
  }
}

void Follower::save_positions() {
  dirty_ = false;
  for (const auto& [path, f] : files_)
    saved_[path] = Saved{f->dev, f->ino, f->lines.consumed(), f->lines.in_cut_line(),
                         f->head.size(), fnv1a(f->head)};
  if (options_.state_file.empty()) return;
  // Written aside and renamed, so a crash leaves the old or the new positions, never half.
  std::string tmp = options_.state_file + ".tmp";
  {
    if (!create_private(tmp)) {
      dirty_ = true;
      return;
    }
    std::ofstream out(tmp, std::ios::trunc);
    out << kStateHeader << '\n';
    for (const auto& [path, s] : saved_)
      out << s.dev << ' ' << s.ino << ' ' << s.offset << ' ' << s.in_cut_line << ' ' << s.head_size
          << ' ' << s.head_hash << ' ' << path << '\n';
    out.flush();
    if (!out) {  // disk full: keep the previous file; retried on the next scan
      dirty_ = true;
      return;
    }
  }
  if (std::rename(tmp.c_str(), options_.state_file.c_str()) != 0) dirty_ = true;
}

std::vector<std::string> Follower::followed() const {
  std::vector<std::string> out;
  for (const auto& [path, f] : files_) out.push_back(path);
  return out;
}

}  // namespace snigate::watch
