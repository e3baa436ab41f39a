#include "proxy/reopenable_file_sink.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/common.h>
#include <spdlog/spdlog.h>

namespace snigate::proxy {

namespace {

std::string open_error(const std::string& path, int err) {
  return "cannot open " + path + " for appending: " + std::strerror(err) +
         " (check [daemon] access_log and the permissions of its directory)";
}

int open_append(const std::string& path, int flags, mode_t mode) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | flags, mode);
}

}  // namespace

ReopenableFileSink::ReopenableFileSink(std::string path) : path_(std::move(path)) {
  std::error_code ec;  // a missing directory surfaces as open's ENOENT below
  if (auto dir = std::filesystem::path(path_).parent_path(); !dir.empty())
    std::filesystem::create_directories(dir, ec);
  fd_ = open_append(path_, O_CREAT, 0666);  // the umask decides, as for any new file
  if (fd_ < 0) throw std::runtime_error("access log: " + open_error(path_, errno));
}

ReopenableFileSink::~ReopenableFileSink() {
  try {
    write_out(pending_);
  } catch (const std::exception&) {
    // Nowhere left to say it: the log is what failed.
  }
  ::close(fd_);
}

void ReopenableFileSink::on_batch_full(std::function<void()> wake) {
  std::lock_guard lock(mutex_);
  wake_ = std::move(wake);
}

void ReopenableFileSink::drain() {
  std::lock_guard writing(write_mu_);
  {
    std::lock_guard lock(mutex_);
    std::swap(pending_, writing_);
    wake_asked_ = false;
  }
  try {
    write_out(writing_);
  } catch (const spdlog::spdlog_ex& e) {
    // The flusher has no caller to tell: the daemon's log says it, once per interval.
    if (auto times = failures_.due())
      spdlog::error("{}; {} batch(es) of lines lost since the last such line", e.what(), *times);
  }
}

void ReopenableFileSink::flush_() {
  std::unique_lock writing(write_mu_, std::try_to_lock);
  if (writing) write_out(pending_);
}

std::string ReopenableFileSink::reopen() {
  std::lock_guard writing(write_mu_);
  std::lock_guard lock(mutex_);
  struct stat old {};
  const mode_t mode = ::fstat(fd_, &old) == 0 ? (old.st_mode & 07777) : 0644;
  // O_EXCL tells a file made here (the usual rotation: renamed away, nothing in its place)
  // from one logrotate's `create` or the operator put there, whose mode is theirs to keep.
  int fd = open_append(path_, O_CREAT | O_EXCL, mode);
  if (fd >= 0) {
    ::fchmod(fd, mode);
  } else if (errno == EEXIST) {
    fd = open_append(path_, 0, 0);
  }
  if (fd < 0) return open_error(path_, errno) + "; still writing to the file it had open";
  try {
    write_out(pending_);  // the lines logged so far belong to the old file
  } catch (const std::exception&) {
    pending_.clear();  // the old file refused them; the new one must not get them out of order
  }
  ::close(fd_);
  fd_ = fd;
  return {};
}

void ReopenableFileSink::sink_it_(const spdlog::details::log_msg& msg) {
  spdlog::memory_buf_t line;
  formatter_->format(msg, line);
  pending_.append(line.data(), line.size());
  // One write per batch, not per connection. A full batch goes to the flusher; the logging
  // thread writes it only when there is none, or when the file has stopped taking lines (a
  // full pipe, a hung disk) and 1 MiB waits: then it waits its turn, as before the flusher.
  constexpr std::size_t kBatch = 64 * 1024, kMost = 16 * kBatch;
  if (pending_.size() < kBatch) return;
  if (wake_ && pending_.size() < kMost) {
    if (!std::exchange(wake_asked_, true)) wake_();
    return;
  }
  // write_mu_ comes before the sink's lock (drain, reopen): let go of it to wait.
  mutex_.unlock();
  std::lock_guard writing(write_mu_);
  mutex_.lock();  // base_sink::log unlocks it when this returns
  write_out(pending_);
}

void ReopenableFileSink::write_out(std::string& lines) {
  const char* p = lines.data();
  std::size_t left = lines.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      lines.clear();  // never retried: a later write would repeat or reorder them
      // spdlog's logger catches this and reports it (rate-limited) on stderr.
      throw spdlog::spdlog_ex("access log: write to " + path_ + " failed", err);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  lines.clear();
}

}  // namespace snigate::proxy
