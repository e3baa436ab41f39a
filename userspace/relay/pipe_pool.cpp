#include "relay/pipe_pool.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>

namespace snigate::relay {

namespace {

// Relaxed throughout: the bound is a budget, not a lock; two threads racing for the last
// pipe both see the count they raised, and one of them backs off.
std::atomic<std::size_t> max_open{kUnboundedPipes};
std::atomic<std::size_t> open_now{0};
std::atomic<std::uint64_t> by_copy{0};
constexpr auto relaxed = std::memory_order_relaxed;

}  // namespace

void set_max_pipes(std::size_t max) { max_open.store(max, relaxed); }

PipeFigures pipe_figures() {
  return {max_open.load(relaxed), open_now.load(relaxed), by_copy.load(relaxed)};
}

namespace detail {

void close_pipe(Pipe& p) {
  if (!p.is_open()) return;
  ::close(p.read_fd);
  ::close(p.write_fd);
  open_now.fetch_sub(1, relaxed);
  p = Pipe{};
}

PipePool& PipePool::shared() {
  static PipePool pool;
  return pool;
}

bool PipePool::take(Pipe& pipe, std::size_t size) {
  {
    std::lock_guard lock(mutex_);
    while (!free_.empty()) {
      pipe = free_.back();
      free_.pop_back();
      if (pipe.size == size && open_now.load(relaxed) <= max_open.load(relaxed)) return true;
      close_pipe(pipe);  // sized for an earlier configuration, or over a lowered bound
    }
  }
  if (open_now.fetch_add(1, relaxed) >= max_open.load(relaxed)) {
    open_now.fetch_sub(1, relaxed);
    return false;
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    open_now.fetch_sub(1, relaxed);
    return false;
  }
  pipe = Pipe{fds[0], fds[1], size};
  // The pipe bounds what one direction holds in flight; failure keeps the default (64 KiB).
  ::fcntl(pipe.write_fd, F_SETPIPE_SZ, static_cast<int>(size));
  return true;
}

void PipePool::give(Pipe& pipe) {
  if (!pipe.is_open()) return;
  {
    std::lock_guard lock(mutex_);
    if (free_.size() < kMaxFree && open_now.load(relaxed) <= max_open.load(relaxed)) {
      free_.push_back(pipe);
      pipe = Pipe{};
      return;
    }
  }
  close_pipe(pipe);
}

void PipePool::count_burst_by_copy() { by_copy.fetch_add(1, relaxed); }

}  // namespace detail
}  // namespace snigate::relay
