#include "relay/splice_relay.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "relay/relay_state.h"

namespace snigate::relay {

namespace asio = boost::asio;
using boost::system::error_code;
using detail::Direction;
using detail::Link;

namespace {

class Pipe {
 public:
  Pipe() = default;
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() { reset(); }

  bool open(std::size_t size, error_code& ec) {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
      ec = error_code(errno, boost::system::system_category());
      return false;
    }
    read_fd = fds[0];
    write_fd = fds[1];
    // The pipe bounds what one direction holds in flight; failure keeps the default (64 KiB).
    ::fcntl(write_fd, F_SETPIPE_SZ, static_cast<int>(size));
    return true;
  }
  void reset() {
    if (read_fd >= 0) ::close(read_fd);
    if (write_fd >= 0) ::close(write_fd);
    read_fd = write_fd = -1;
  }
  bool is_open() const { return read_fd >= 0; }

  int read_fd = -1;
  int write_fd = -1;
};

error_code last_error() { return error_code(errno, boost::system::system_category()); }

asio::awaitable<void> pump(Link& link, Direction d) {
  const std::size_t size = link.options().buffer_bytes;
  constexpr unsigned flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
  Pipe pipe;  // opened on the first readable event, so an idle connection holds no pipe
  error_code ec;
  for (;;) {
    if (!pipe.is_open()) {
      co_await d.from.async_wait(tcp::socket::wait_read,
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return link.failed(d.from_side, ec);
      if (!pipe.open(size, ec)) co_return link.failed(d.from_side, ec);
    }
    ssize_t n = ::splice(d.from.native_handle(), nullptr, pipe.write_fd, nullptr, size, flags);
    if (n == 0) co_return link.eof(d);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) co_return link.failed(d.from_side, last_error());
      co_await d.from.async_wait(tcp::socket::wait_read,
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return link.failed(d.from_side, ec);
      continue;
    }
    link.touch();
    // Drain the pipe completely before reading again: at most `size` bytes in flight.
    auto in_pipe = static_cast<std::size_t>(n);
    while (in_pipe > 0) {
      ssize_t m = ::splice(pipe.read_fd, nullptr, d.to.native_handle(), nullptr, in_pipe, flags);
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
