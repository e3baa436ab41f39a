#include "relay/splice_relay.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "relay/relay_state.h"

namespace snigate::relay {

namespace asio = boost::asio;
using boost::system::error_code;
using detail::Direction;
using detail::Link;

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

// Empty pipes kept for reuse by this worker thread (a coroutine stays on its worker's
// thread). A direction holds a pipe only while it moves bytes, and gives it back empty when
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

// A direction's pipe: back to the pool when empty, closed when it may still hold bytes (a
// failed write leaves them there).
class HeldPipe {
 public:
  HeldPipe() = default;
  HeldPipe(const HeldPipe&) = delete;
  HeldPipe& operator=(const HeldPipe&) = delete;
  ~HeldPipe() { empty_ ? PipePool::local().give(pipe_) : close_pipe(pipe_); }

  bool take(std::size_t size, error_code& ec) { return PipePool::local().take(pipe_, size, ec); }
  void give_back() {
    PipePool::local().give(pipe_);
    empty_ = true;
  }
  void filled() { empty_ = false; }
  void drained() { empty_ = true; }
  bool is_open() const { return pipe_.is_open(); }
  int read_fd() const { return pipe_.read_fd; }
  int write_fd() const { return pipe_.write_fd; }

 private:
  Pipe pipe_;
  bool empty_ = true;
};

error_code last_error() { return error_code(errno, boost::system::system_category()); }

asio::awaitable<void> pump(Link& link, Direction d) {
  const std::size_t size = link.options().buffer_bytes;
  constexpr unsigned flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
  HeldPipe pipe;  // taken when the source is readable, given back when it has nothing more
  error_code ec;
  for (;;) {
    if (!pipe.is_open()) {
      co_await d.from.async_wait(tcp::socket::wait_read,
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return link.failed(d.from_side, ec);
      if (!pipe.take(size, ec)) co_return link.failed(d.from_side, ec);
    }
    ssize_t n = ::splice(d.from.native_handle(), nullptr, pipe.write_fd(), nullptr, size, flags);
    if (n == 0) co_return link.eof(d);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) co_return link.failed(d.from_side, last_error());
      pipe.give_back();  // empty: the last read was drained
      continue;
    }
    pipe.filled();
    link.touch();
    // Drain the pipe completely before reading again: at most `size` bytes in flight.
    auto in_pipe = static_cast<std::size_t>(n);
    while (in_pipe > 0) {
      ssize_t m = ::splice(pipe.read_fd(), nullptr, d.to.native_handle(), nullptr, in_pipe, flags);
      if (m > 0) {
        in_pipe -= static_cast<std::size_t>(m);
        d.count += static_cast<std::uint64_t>(m);
        continue;
      }
      if (m < 0 && errno == EINTR) continue;
      if (m < 0 && errno != EAGAIN) co_return link.failed(d.to_side, last_error());
      co_await d.to.async_wait(tcp::socket::wait_write,
                               asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return link.failed(d.to_side, ec);
    }
    pipe.drained();
  }
}

}  // namespace

asio::awaitable<Result> SpliceRelay::run(tcp::socket& client, tcp::socket& upstream,
                                         const Options& options, Counters& counters) {
  // splice(2) into a socket whose peer has reset raises SIGPIPE, and unlike send(2) it has no
  // MSG_NOSIGNAL: the process would die of a peer's reset. EPIPE is handled as an error.
  static std::once_flag sigpipe_ignored;
  std::call_once(sigpipe_ignored, [] { ::signal(SIGPIPE, SIG_IGN); });
  counters.mode = Mode::Splice;
  error_code ignored;
  // splice(2) on a blocking socket would block the event loop. asio's user flag means
  // O_NONBLOCK is set on the descriptor (its internal one alone does not say so); checking it
  // first spares an ioctl per socket already set (the listener sets the client's).
  if (!client.non_blocking()) client.non_blocking(true, ignored);
  if (!upstream.non_blocking()) upstream.non_blocking(true, ignored);
  Link link(client, upstream, options, counters);
  co_return co_await link.run(pump);
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
