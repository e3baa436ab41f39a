#pragma once
// The splice relay's pipes: bounded per process, as HAProxy's `maxpipes` bounds its own.
// A direction takes a pipe only while it moves bytes and gives it back empty once its source
// has nothing more for now, so an idle connection holds none; when every pipe the bound
// allows is in use, that burst goes by copy through a buffer instead (splice_relay.cpp),
// and the next burst asks again. The bound is what lets the descriptor budget count 2 per
// connection, plus 2 per pipe of the bound (daemon/fd_budget.h).
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mutex>
#include <vector>

namespace snigate::relay {

// How many pipes the process may hold open at once (in use, or kept empty for reuse).
// Unbounded until set; the daemon sets it from [daemon] max_pipes or its descriptor budget.
// Lowering it closes pipes as they come back, until the process holds no more than it allows.
void set_max_pipes(std::size_t max);
inline constexpr std::size_t kUnboundedPipes = std::numeric_limits<std::size_t>::max();

struct PipeFigures {
  std::size_t max = kUnboundedPipes;
  std::size_t open = 0;                 // pipes the process holds (in use or kept for reuse)
  std::uint64_t bursts_by_copy = 0;     // bursts moved by copy: no pipe was to be had
};
PipeFigures pipe_figures();

namespace detail {

struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  std::size_t size = 0;
  bool is_open() const { return read_fd >= 0; }
};

// Closes `pipe` for good; it no longer counts against the bound.
void close_pipe(Pipe& pipe);

// Empty pipes kept for reuse, one list for the process: a short connection costs no pipe2,
// fcntl and two close calls once the pool is warm, and a pipe one worker gave back serves any
// other (lists per thread kept a quiet worker's pipes from a busy one that found none left).
// A take and a give each lock it once, beside the two splice(2) calls of every burst.
class PipePool {
 public:
  static PipePool& shared();
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // A pipe of `size` bytes into `pipe`, or false when the bound is reached or pipe2 fails
  // (EMFILE, ENFILE): the caller moves this burst another way.
  bool take(Pipe& pipe, std::size_t size);
  // `pipe` must be empty: every byte spliced in has been spliced out.
  void give(Pipe& pipe);
  // For the counter: a burst that went by copy.
  static void count_burst_by_copy();

 private:
  PipePool() = default;
  static constexpr std::size_t kMaxFree = 256;
  std::mutex mutex_;
  std::vector<Pipe> free_;
};

}  // namespace detail
}  // namespace snigate::relay
