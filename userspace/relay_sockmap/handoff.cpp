#include "relay_sockmap/handoff.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "relay/ending.h"
#include "relay/idle_sweep.h"
#include "relay_sockmap/tcp_accounting.h"

namespace snigate::relay::sockmap {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;

namespace {

constexpr int kClient = SNIGATE_RELAY_CLIENT;
constexpr int kUpstream = SNIGATE_RELAY_UPSTREAM;

// The conns array is shared with the program: every access is a single atomic one.
std::uint64_t load(__u64& v) { return std::atomic_ref<__u64>(v).load(std::memory_order_acquire); }
void store(__u64& v, std::uint64_t x) {
  std::atomic_ref<__u64>(v).store(x, std::memory_order_release);
}
std::uint32_t load(__u32& v) { return std::atomic_ref<__u32>(v).load(std::memory_order_acquire); }
void store(__u32& v, std::uint32_t x) {
  std::atomic_ref<__u32>(v).store(x, std::memory_order_release);
}

error_code errno_code(int err) { return error_code(err, boost::system::system_category()); }

// One handed-off connection. Between events it holds no coroutine frame and no timer: a
// readiness wait per socket, and its place on the event loop's idle sweep, which also keeps
// the counters live. An event on a side runs that side's watcher (watch()) until the
// direction is back in the kernel's hands, or to its end.
class Handoff final : public detail::Swept, public std::enable_shared_from_this<Handoff> {
 public:
  Handoff(Kernel& kernel, std::uint32_t slot, tcp::socket& client, tcp::socket& upstream,
          const Options& options, Counters& counters, Relay::Done ended)
      : kernel_(kernel),
        slot_(slot),
        socks_{&client, &upstream},
        options_(options),
        counters_(counters),
        base_{counters.client_to_upstream.load(), counters.upstream_to_client.load()},
        ended_(std::move(ended)) {}

  void start() {
    list(sock(kClient).get_executor());
    for (int side : {kClient, kUpstream}) wait(side);
  }

 private:
  // Counters are the session's running totals (it counts the replayed preread itself):
  // add the kernel's counts to what they held at the handoff, never replace them.
  void sync_counters() {
    auto& c = kernel_.conn(slot_);
    counters_.client_to_upstream = base_[kClient] + load(c.dir[kClient].redirected) +
                                   load(c.dir[kClient].user_bytes);
    counters_.upstream_to_client = base_[kUpstream] + load(c.dir[kUpstream].redirected) +
                                   load(c.dir[kUpstream].user_bytes);
  }

  snigate_relay_dir& dir(int side) { return kernel_.conn(slot_).dir[side]; }
  tcp::socket& sock(int side) { return *socks_[side]; }

  // Whether `side` is ready already. Asked before every wait, so no edge is lost: the socket
  // may have become ready before it (asio's epoll registration is edge-triggered).
  bool ready_now(int side, tcp::socket::wait_type type) {
    pollfd p{sock(side).native_handle(),
             static_cast<short>(type == tcp::socket::wait_read ? POLLIN | POLLRDHUP : 0), 0};
    return ::poll(&p, 1, 0) > 0;
  }

  // Waits until `side` has something to say (bytes while paused, a FIN, a reset), then runs
  // its watcher.
  void wait(int side) {
    if (ready_now(side, tcp::socket::wait_read)) return run_watch(side);
    sock(side).async_wait(tcp::socket::wait_read,
                          [self = shared_from_this(), side](const error_code& ec) {
                            if (self->ending_.ended()) return self->stopped();
                            if (ec) {
                              self->failed(side, ec);
                              return self->stopped();
                            }
                            self->run_watch(side);
                          });
  }

  // Runs watch(side): waits again when it gives the direction back to the kernel.
  void run_watch(int side) {
    asio::co_spawn(sock(side).get_executor(), watch(side),
                   [self = shared_from_this(), side](std::exception_ptr e, bool again) {
                     if (e) {
                       try {
                         std::rethrow_exception(e);
                       } catch (const std::exception& x) {
                         if (!self->ending_.ended()) self->close_both(false, false);
                         self->finish(End::Error, x.what());
                       }
                     }
                     if (again && !self->ending_.ended()) return self->wait(side);
                     self->stopped();
                   });
  }

  // A side's watch has stopped for good: once both have, the connection has ended.
  void stopped() {
    if (++stopped_ < 2) return;
    unlist();
    sync_counters();
    auto ended = std::move(ended_);
    ended(ending_.result());
  }

  // Readiness inside a watcher.
  asio::awaitable<error_code> ready(int side, tcp::socket::wait_type type) {
    if (ready_now(side, type)) co_return error_code{};
    error_code ec;
    co_await sock(side).async_wait(type, asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
  }

  // Sleeps on the connection's executor; false when the connection ended meanwhile.
  asio::awaitable<bool> pause(int side, std::chrono::milliseconds d) {
    asio::steady_timer timer(sock(side).get_executor(), d);
    error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return !ending_.ended();
  }

  // Waits until the peer has taken all but `slack` of the bytes sent from `side` (redirected
  // by the program or written by us), polling its TCP accounting at steps from `step` up to
  // `max_step`. False when the connection ended meanwhile.
  template <class Step>
  asio::awaitable<bool> peer_took(int side, std::uint64_t slack, Step step, Step max_step) {
    auto& d = dir(side);
    const int peer = sock(side ^ 1).native_handle();
    asio::steady_timer timer(sock(side).get_executor());
    for (;;) {
      if (ending_.ended()) co_return false;
      auto written = bytes_written(peer);
      if (!written) {
        failed(side ^ 1, errno_code(errno));
        co_return false;
      }
      const std::uint64_t sent = load(d.peer_base) + load(d.redirected) + load(d.user_bytes);
      if (sent <= *written + slack) co_return true;
      if (int err = pending_error(peer); err != 0) {
        failed(side ^ 1, errno_code(err));
        co_return false;
      }
      timer.expires_after(step);
      error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      step = std::min(step * 2, max_step);
    }
  }

  // Every byte sent from `side` is in the peer's send queue: until then the psock still holds
  // some, and a FIN, a userspace write or a removal from the map would overtake or drop them.
  asio::awaitable<bool> drained(int side) {
    return peer_took(side, 0, std::chrono::milliseconds(1), std::chrono::milliseconds(16));
  }

  // What `side` sent is mostly out of the peer's psock queue (inflight at most half the cap,
  // relay_abi.h): the point where a paused direction goes back to the kernel. A psock worker
  // moves ~2 MiB in about a millisecond at full speed: short steps.
  asio::awaitable<bool> room(int side) {
    return peer_took(side, kernel_.inflight_cap() / 2, std::chrono::microseconds(200),
                     std::chrono::microseconds(2000));
  }

  // One direction, from `side` to its peer, once its source has shown something. The program
  // relays while the source is in `sources`; this sees the FIN, an error, and the end of a
  // pause: a source taken out of `sources` (DETACHED) that has bytes waiting in its receive
  // queue goes back in once the peer has room, and the verdict is run over what waited. One
  // that got its FIN meanwhile cannot go back: this copies the rest in userspace. True when
  // the direction is in the kernel's hands again, with nothing left to see: wait() again.
  asio::awaitable<bool> watch(int side) {
    auto& src = sock(side);
    auto& dst = sock(side ^ 1);
    auto& d = dir(side);
    const int fd = src.native_handle();
    bool in_kernel = true;
    std::unique_ptr<char[]> buffer;  // only once this copies
    std::size_t size = 0;
    for (;;) {
      if (ending_.ended()) co_return false;
      if (in_kernel) {
        char byte;
        ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0) break;  // the FIN, every byte before it verdicted
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN) co_return true;
          failed(side, errno_code(errno));
          co_return false;
        }
        // Unread bytes: the verdict takes every skb while the source is in `sources`, so
        // this is a pause (the iterator set DETACHED under the socket lock this peek took
        // after it). Checked all the same, and never read while the kernel may relay.
        if (load(d.state) != SNIGATE_RELAY_DETACHED) {
          if (!co_await pause(side, 1ms)) co_return false;
          continue;
        }
        if (!co_await room(side)) co_return false;
        store(d.woken, 0u);
        store(d.state, static_cast<std::uint32_t>(SNIGATE_RELAY_RUNNING));
        if (kernel_.attach_source(fd, slot_, side)) {
          kick_verdict(fd);  // what waited is verdicted now, not when more arrives
          co_return true;
        }
        // Not ESTABLISHED any more: the FIN came while paused. Copy the rest, after every
        // redirected byte, which the drained() before each write makes sure of.
        store(d.state, static_cast<std::uint32_t>(SNIGATE_RELAY_DETACHED));
        in_kernel = false;
        continue;
      }
      error_code ec = co_await ready(side, tcp::socket::wait_read);
      if (ending_.ended()) co_return false;
      if (ec) {
        failed(side, ec);
        co_return false;
      }
      if (!buffer) {
        size = read_size(src);
        buffer = std::make_unique_for_overwrite<char[]>(size);  // zeroing MiBs showed in profiles
      }
      ssize_t n = ::recv(fd, buffer.get(), size, MSG_DONTWAIT);
      if (n == 0) break;
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        failed(side, errno_code(errno));
        co_return false;
      }
      if (!co_await drained(side)) co_return false;
      co_await asio::async_write(dst, asio::buffer(buffer.get(), static_cast<std::size_t>(n)),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ending_.ended()) co_return false;
      if (ec) {
        failed(side ^ 1, ec);
        co_return false;
      }
      store(d.user_bytes, load(d.user_bytes) + static_cast<std::uint64_t>(n));
    }
    buffer.reset();
    // FIN from src: pass it on once the peer has every byte, keep the other way open.
    if (!co_await drained(side)) co_return false;
    error_code ignored;
    dst.shutdown(tcp::socket::shutdown_send, ignored);
    if (++directions_done_ == 2) {
      finish(End::Clean);
      co_return false;
    }
    // src now only reads EOF; keep watching it for a reset while the peer still sends.
    for (;;) {
      error_code ec = co_await ready(side, tcp::socket::wait_error);
      if (ending_.ended() || directions_done_ == 2) co_return false;
      if (ec) {
        failed(side, ec);
        co_return false;
      }
      if (int err = pending_error(src.native_handle()); err != 0) {
        failed(side, errno_code(err));
        co_return false;
      }
      // Hang-up without an error: the other direction is finishing; do not spin on it.
      if (!co_await pause(side, 10ms)) co_return false;
    }
  }

  // The sweep's tick: live counters from the kernel's counts, then whether a direction broke
  // or the idle timeout has passed, without touching the payload.
  std::chrono::milliseconds idle_timeout() const override { return options_.idle_timeout; }
  bool due(std::chrono::steady_clock::time_point now) override {
    if (ending_.ended()) return false;
    sync_counters();
    for (int side : {kClient, kUpstream})
      if (load(dir(side).broken)) return true;
    if (const std::uint64_t t = total(); t != last_total_) {
      last_total_ = t;
      last_change_ = now;
      return false;
    }
    return now - last_change_ >= options_.idle_timeout;
  }
  void swept_end() override {
    if (ending_.ended() || broken()) return;
    finish(End::IdleTimeout);
    close_both(false, false);
  }
  std::shared_ptr<void> hold() override { return shared_from_this(); }

  // Bytes moved either way since the handoff.
  std::uint64_t total() {
    std::uint64_t t = 0;
    for (auto& d : kernel_.conn(slot_).dir) t += load(d.redirected) + load(d.user_bytes);
    return t;
  }

  // A direction the program could not relay exactly once (relay_abi.h) drops every byte from
  // then on: reset both peers, so neither takes the stream it got for a whole one.
  bool broken() {
    for (int side : {kClient, kUpstream}) {
      const auto why = load(dir(side).broken);
      if (!why) continue;
      finish(End::Error, std::string(side == kClient ? "client" : "upstream") +
                             " stream: " + broken_reason(why) + "; both sides reset");
      close_both(true, true);
      return true;
    }
    return false;
  }

  void finish(End end, std::string detail = {}) { ending_.finish(end, std::move(detail)); }

  // The rules every relay shares (ending.h): a reset is passed on as a reset.
  void failed(int side, const error_code& ec) {
    if (auto close = ending_.failed(side == kClient, ec))
      close_both(close->reset_client, close->reset_upstream);
  }

  void close_both(bool reset_client, bool reset_upstream) {
    error_code ignored;
    // Out of the map first, so nothing is redirected into a socket being torn down.
    kernel_.remove(slot_, kClient);
    kernel_.remove(slot_, kUpstream);
    // SO_LINGER {1, 0}: close() sends RST instead of FIN (tcp(7)).
    if (reset_client && sock(kClient).is_open())
      sock(kClient).set_option(tcp::socket::linger(true, 0), ignored);
    if (reset_upstream && sock(kUpstream).is_open())
      sock(kUpstream).set_option(tcp::socket::linger(true, 0), ignored);
    sock(kClient).close(ignored);
    sock(kUpstream).close(ignored);
  }

  // Room for all a source that finished in userspace holds: its receive buffer (clamped at
  // the handoff), within bounds.
  std::size_t read_size(tcp::socket& src) const {
    int rcvbuf = 0;
    socklen_t len = sizeof rcvbuf;
    ::getsockopt(src.native_handle(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len);
    return std::clamp<std::size_t>(static_cast<std::size_t>(std::max(rcvbuf, 0)),
                                   std::max<std::size_t>(options_.buffer_bytes, 256 * 1024),
                                   16u << 20);
  }

  Kernel& kernel_;
  std::uint32_t slot_;
  tcp::socket* socks_[2];
  const Options& options_;
  Counters& counters_;
  const std::uint64_t base_[2];  // counters_ at the handoff
  Relay::Done ended_;
  std::uint64_t last_total_ = total();
  std::chrono::steady_clock::time_point last_change_ = std::chrono::steady_clock::now();
  int stopped_ = 0;  // sides whose watch has stopped for good
  int directions_done_ = 0;
  Ending ending_;
};

}  // namespace

void watch_handoff(Kernel& kernel, std::uint32_t slot, tcp::socket& client,
                   tcp::socket& upstream, const Options& options, Counters& counters,
                   Relay::Done ended) {
  std::make_shared<Handoff>(kernel, slot, client, upstream, options, counters, std::move(ended))
      ->start();
}

}  // namespace snigate::relay::sockmap
