#include "relay/splice_relay.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "net/last_error.h"
#include "relay/copy_io.h"
#include "relay/flow.h"
#include "relay/pipe_pool.h"

namespace snigate::relay {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

using net::last_error;
using detail::Pipe;
using detail::PipePool;

// socket -> pipe -> socket, the pipe taken from the pool when a direction has bytes to move
// and given back once it is empty again (closed instead if bytes may remain in it). A burst
// that finds no pipe to take (max_pipes reached) goes through a copy buffer, as relay =
// "copy" moves it, and the next burst asks the pool again.
class SpliceFlow final : public detail::Flow {
 public:
  SpliceFlow(tcp::socket& client, tcp::socket& upstream, const Options& options,
             Counters& counters, Relay::Done done)
      : Flow(client, upstream, options, counters, std::move(done)) {
    counters.mode = Mode::Splice;
  }
  ~SpliceFlow() override {
    for (auto& p : pipe_) detail::close_pipe(p);  // released already unless start() never ran
  }

 private:
  static constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;

  std::size_t read(int d, tcp::socket& from, std::size_t max, error_code& ec) override {
    Pipe& p = pipe_[d];
    if (!p.is_open() && !by_copy_[d] && !PipePool::shared().take(p, max)) {
      by_copy_[d] = true;
      PipePool::count_burst_by_copy();
    }
    if (by_copy_[d]) return copy_.read(d, from, max, ec);
    for (;;) {
      ssize_t n = ::splice(from.native_handle(), nullptr, p.write_fd, nullptr, max, kFlags);
      if (n > 0) return static_cast<std::size_t>(n);
      if (n < 0 && errno == EINTR) continue;
      ec = n == 0 ? error_code(asio::error::eof) : last_error();
      return 0;
    }
  }

  std::size_t write(int d, tcp::socket& to, std::size_t held, error_code& ec) override {
    if (by_copy_[d]) return copy_.write(d, to, held, ec);
    for (;;) {
      ssize_t n = ::splice(pipe_[d].read_fd, nullptr, to.native_handle(), nullptr, held, kFlags);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno == EINTR) continue;
      ec = last_error();
      return 0;
    }
  }

  void release(int d, bool empty) override {
    if (by_copy_[d]) {
      copy_.release(d, options().buffer_bytes);
      by_copy_[d] = false;
    } else if (empty) {
      PipePool::shared().give(pipe_[d]);
    } else {
      detail::close_pipe(pipe_[d]);
    }
  }

  Pipe pipe_[2];
  bool by_copy_[2] = {false, false};  // this burst of direction d goes by copy_
  detail::CopyIo copy_;
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
