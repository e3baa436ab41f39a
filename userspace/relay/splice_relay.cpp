#include "relay/splice_relay.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include "relay/copy_io.h"
#include "relay/flow.h"

namespace snigate::relay {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  std::size_t size = 0;
  bool is_open() const { return read_fd >= 0; }
};

void close_pipe(Pipe& p) {
  if (p.read_fd >= 0) ::close(p.read_fd);
  if (p.write_fd >= 0) ::close(p.write_fd);
  p = Pipe{};
}

// Empty pipes kept for reuse by this worker thread (a flow runs on its worker's thread only).
// A direction holds a pipe only while it moves bytes, and gives it back empty when
// its source has nothing more for now or ends: an idle connection holds none, and a short
// one costs no pipe2, fcntl and four close calls (HAProxy's pipe pool, bounded the same way).
class PipePool {
 public:
  static PipePool& local() {
    thread_local PipePool pool;
    return pool;
  }
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;
  ~PipePool() {
    for (auto& p : free_) close_pipe(p);
  }

  bool take(Pipe& pipe, std::size_t size, error_code& ec) {
    while (!free_.empty()) {
      pipe = free_.back();
      free_.pop_back();
      if (pipe.size == size) return true;
      close_pipe(pipe);  // sized for an earlier configuration
    }
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
      ec = error_code(errno, boost::system::system_category());
      return false;
    }
    pipe = Pipe{fds[0], fds[1], size};
    // The pipe bounds what one direction holds in flight; failure keeps the default (64 KiB).
    ::fcntl(pipe.write_fd, F_SETPIPE_SZ, static_cast<int>(size));
    return true;
  }
  // `pipe` must be empty: every byte spliced in has been spliced out.
  void give(Pipe& pipe) {
    if (!pipe.is_open()) return;
    if (free_.size() < kMaxFree)
      free_.push_back(pipe);
    else
      close_pipe(pipe);
    pipe = Pipe{};
  }

 private:
  PipePool() = default;
  static constexpr std::size_t kMaxFree = 256;
  std::vector<Pipe> free_;
};

using detail::last_error;

// socket -> pipe -> socket, the pipe taken from the pool when a direction has bytes to move
// and given back once it is empty again (closed instead if bytes may remain in it).
class SpliceFlow final : public detail::Flow {
 public:
  SpliceFlow(tcp::socket& client, tcp::socket& upstream, const Options& options,
             Counters& counters, Relay::Done done)
      : Flow(client, upstream, options, counters, std::move(done)) {
    counters.mode = Mode::Splice;
  }
  ~SpliceFlow() override {
    for (auto& p : pipe_) close_pipe(p);  // released already unless start() never ran
  }

 private:
  static constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;

  std::size_t read(int d, tcp::socket& from, std::size_t max, error_code& ec) override {
    Pipe& p = pipe_[d];
    if (!p.is_open() && !PipePool::local().take(p, max, ec)) return 0;
    for (;;) {
      ssize_t n = ::splice(from.native_handle(), nullptr, p.write_fd, nullptr, max, kFlags);
      if (n > 0) return static_cast<std::size_t>(n);
      if (n < 0 && errno == EINTR) continue;
      ec = n == 0 ? error_code(asio::error::eof) : last_error();
      return 0;
    }
  }

  std::size_t write(int d, tcp::socket& to, std::size_t held, error_code& ec) override {
    for (;;) {
      ssize_t n = ::splice(pipe_[d].read_fd, nullptr, to.native_handle(), nullptr, held, kFlags);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno == EINTR) continue;
      ec = last_error();
      return 0;
    }
  }

  void release(int d, bool empty) override {
    if (empty)
      PipePool::local().give(pipe_[d]);
    else
      close_pipe(pipe_[d]);
  }

  Pipe pipe_[2];
};

}  // namespace

void SpliceRelay::start(tcp::socket& client, tcp::socket& upstream, const Options& options,
                        Counters& counters, Done done) {
  // splice(2) into a socket whose peer has reset raises SIGPIPE, and unlike send(2) it has no
  // MSG_NOSIGNAL: the process would die of a peer's reset. EPIPE is handled as an error.
  static std::once_flag sigpipe_ignored;
  std::call_once(sigpipe_ignored, [] { ::signal(SIGPIPE, SIG_IGN); });
  detail::start_flow<SpliceFlow>(client, upstream, options, counters, std::move(done));
}

bool SpliceRelay::available(std::string* reason) {
  int pipe_fds[2];
  int sock_fds[2];
  if (::pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    if (reason) *reason = std::string("pipe2 failed: ") + std::strerror(errno);
    return false;
  }
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sock_fds) != 0) {
    if (reason) *reason = std::string("socketpair failed: ") + std::strerror(errno);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return false;
  }
  // Splicing from an empty socket: EAGAIN proves the syscall works for sockets; ENOSYS or
  // EINVAL (seccomp filters, emulation layers) mean it does not.
  ssize_t n = ::splice(sock_fds[0], nullptr, pipe_fds[1], nullptr, 1, SPLICE_F_NONBLOCK);
  int err = errno;
  for (int fd : {pipe_fds[0], pipe_fds[1], sock_fds[0], sock_fds[1]}) ::close(fd);
  if (n < 0 && err != EAGAIN) {
    if (reason) *reason = std::string("splice(2) unavailable: ") + std::strerror(err);
    return false;
  }
  return true;
}

}  // namespace snigate::relay
