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
#include "relay/then_flow.h"

namespace snigate::relay {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

using net::last_error;
using detail::Pipe;
using detail::PipePool;

// socket -> pipe -> socket, the pipe taken from the pool when a burst goes through one
// (SpliceRelay::Bursts) and given back once the direction is empty again (closed instead if
// bytes may remain in it). A burst that finds no pipe to take (max_pipes reached) goes on by
// copy through a buffer, as relay = "copy" moves it, and the next burst asks the pool again.
class SpliceFlow : public detail::Flow {
 public:
  SpliceFlow(tcp::socket& client, tcp::socket& upstream, const Options& options,
             Counters& counters, Relay::Done done, SpliceRelay::Bursts bursts)
      : Flow(client, upstream, options, counters, std::move(done)),
        counters_(counters),
        bulk_only_(bursts == SpliceRelay::Bursts::Bulk) {
    counters.mode = bulk_only_ ? Mode::Copy : Mode::Splice;
  }
  ~SpliceFlow() override {
    for (auto& p : pipe_) detail::close_pipe(p);  // released already unless start() never ran
  }

 protected:
  std::size_t read(int d, tcp::socket& from, std::size_t max, error_code& ec) override {
    // Only ever called with nothing held (flow.h): a burst may change its way here.
    Via& via = via_[d];
    if (via == Via::None)
      via = bulk_only_ ? Via::Copy : pipe_or_copy(d, max);
    else if (via == Via::Copy && filled_[d] && bulk_bursts >= 2)
      via = pipe_or_copy(d, max);
    if (via != Via::Pipe) {
      const std::size_t n = copy_.read(d, from, max, ec);
      if (bulk_only_ && n == max && !filled_[d]) {
        filled_[d] = true;
        ++bulk_bursts;
      }
      return n;
    }
    for (;;) {
      ssize_t n = ::splice(from.native_handle(), nullptr, pipe_[d].write_fd, nullptr, max, kFlags);
      if (n > 0) return static_cast<std::size_t>(n);
      if (n < 0 && errno == EINTR) continue;
      ec = n == 0 ? error_code(asio::error::eof) : last_error();
      return 0;
    }
  }

 private:
  static constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;

  // Bursts of this thread's flows that have filled a copy buffer and not yet ended (Bulk):
  // one alone stays on copy, whose buffer then stays in the core's cache.
  static thread_local std::size_t bulk_bursts;

  // How the current burst of a direction moves: not started; by copy, until one of its reads
  // has filled the buffer while another burst of this thread's has too (Bulk); by copy for
  // good, the pool having no pipe; through pipe_[d].
  enum class Via { None, Copy, CopyOnly, Pipe };

  Via pipe_or_copy(int d, std::size_t size) {
    if (PipePool::shared().take(pipe_[d], size)) {
      copy_.release(d, options().buffer_bytes);
      counters_.mode = Mode::Splice;
      return Via::Pipe;
    }
    PipePool::count_burst_by_copy();
    return Via::CopyOnly;
  }

  bool nothing_left(int d) const override {
    return via_[d] != Via::Pipe && copy_.nothing_left(d);
  }

  std::size_t write(int d, tcp::socket& to, std::size_t held, error_code& ec) override {
    if (via_[d] != Via::Pipe) return copy_.write(d, to, held, ec);
    for (;;) {
      ssize_t n = ::splice(pipe_[d].read_fd, nullptr, to.native_handle(), nullptr, held, kFlags);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno == EINTR) continue;
      ec = last_error();
      return 0;
    }
  }

  void release(int d, bool empty) override {
    if (via_[d] != Via::Pipe)
      copy_.release(d, options().buffer_bytes);
    else if (empty)
      PipePool::shared().give(pipe_[d]);
    else
      detail::close_pipe(pipe_[d]);
    via_[d] = Via::None;
    if (filled_[d]) --bulk_bursts;
    filled_[d] = false;
  }

  Counters& counters_;
  const bool bulk_only_;
  Pipe pipe_[2];
  Via via_[2] = {Via::None, Via::None};
  bool filled_[2] = {false, false};  // a read of direction d's burst filled the buffer
  detail::CopyIo copy_;
};

thread_local std::size_t SpliceFlow::bulk_bursts = 0;

// splice(2) into a socket whose peer has reset raises SIGPIPE, and unlike send(2) it has no
// MSG_NOSIGNAL: the process would die of a peer's reset. EPIPE is handled as an error.
void ignore_sigpipe() {
  static std::once_flag once;
  std::call_once(once, [] { ::signal(SIGPIPE, SIG_IGN); });
}

}  // namespace

void SpliceRelay::start(tcp::socket& client, tcp::socket& upstream, const Options& options,
                        Counters& counters, Done done) {
  ignore_sigpipe();
  detail::start_flow<SpliceFlow>(client, upstream, options, counters, std::move(done), bursts_);
}

void SpliceRelay::start_then(tcp::socket& client, tcp::socket& upstream, const Options& options,
                             Counters& counters, Done done, const HandoffProof& proof,
                             Takeover& then) {
  ignore_sigpipe();
  detail::start_flow<detail::ThenFlow<SpliceFlow>>(client, upstream, options, counters,
                                                   std::move(done), proof, then, bursts_);
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
