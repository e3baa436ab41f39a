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
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "relay/ending.h"
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

// One handed-off connection: a watcher per direction and an idle ticker.
class Handoff {
 public:
  Handoff(Kernel& kernel, std::uint32_t slot, tcp::socket& client, tcp::socket& upstream,
          const Options& options, Counters& counters)
      : kernel_(kernel),
        slot_(slot),
        socks_{&client, &upstream},
        options_(options),
        counters_(counters),
        base_{counters.client_to_upstream.load(), counters.upstream_to_client.load()},
        ticker_(client.get_executor()),
        wake_(client.get_executor()) {}

  asio::awaitable<Result> run() {
    auto ex = co_await asio::this_coro::executor;
    auto on_done = [this](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          if (!ending_.ended()) close_both(false, false);
          finish(End::Error, x.what());
        }
      }
      --running_;
      wake_.cancel();
    };
    running_ = 3;
    asio::co_spawn(ex, watch(kClient), on_done);
    asio::co_spawn(ex, watch(kUpstream), on_done);
    asio::co_spawn(ex, tick(), on_done);
    while (running_ > 0) {
      wake_.expires_at(asio::steady_timer::time_point::max());
      error_code ec;
      co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    sync_counters();
    co_return ending_.result();
  }

  // Counters are the session's running totals (it counts the replayed preread itself):
  // add the kernel's counts to what they held at the handoff, never replace them.
  void sync_counters() {
    auto& c = kernel_.conn(slot_);
    counters_.client_to_upstream = base_[kClient] + load(c.dir[kClient].redirected) +
                                   load(c.dir[kClient].user_bytes);
    counters_.upstream_to_client = base_[kUpstream] + load(c.dir[kUpstream].redirected) +
                                   load(c.dir[kUpstream].user_bytes);
  }

 private:
  snigate_relay_dir& dir(int side) { return kernel_.conn(slot_).dir[side]; }
  tcp::socket& sock(int side) { return *socks_[side]; }

  // Readiness without losing an edge: the socket may have become ready before this wait
  // (asio's epoll registration is edge-triggered), so ask poll(2) first.
  asio::awaitable<error_code> ready(int side, tcp::socket::wait_type type) {
    pollfd p{sock(side).native_handle(),
             static_cast<short>(type == tcp::socket::wait_read ? POLLIN | POLLRDHUP : 0), 0};
    if (::poll(&p, 1, 0) > 0) co_return error_code{};
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

  // One direction, from `side` to its peer. The program relays while the source is in
  // `sources`; this sees the FIN, an error, and the end of a pause: a source taken out of
  // `sources` (DETACHED) that has bytes waiting in its receive queue goes back in once the
  // peer has room, and the verdict is run over what waited. One that got its FIN meanwhile
  // cannot go back: this copies the rest in userspace.
  asio::awaitable<void> watch(int side) {
    auto& src = sock(side);
    auto& dst = sock(side ^ 1);
    auto& d = dir(side);
    const int fd = src.native_handle();
    bool in_kernel = true;
    std::unique_ptr<char[]> buffer;  // only once this copies
    std::size_t size = 0;
    for (;;) {
      error_code ec = co_await ready(side, tcp::socket::wait_read);
      if (ending_.ended()) co_return;
      if (ec) co_return failed(side, ec);
      if (in_kernel) {
        char byte;
        ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0) break;  // the FIN, every byte before it verdicted
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) continue;
          co_return failed(side, errno_code(errno));
        }
        // Unread bytes: the verdict takes every skb while the source is in `sources`, so
        // this is a pause (the iterator set DETACHED under the socket lock this peek took
        // after it). Checked all the same, and never read while the kernel may relay.
        if (load(d.state) != SNIGATE_RELAY_DETACHED) {
          if (!co_await pause(side, 1ms)) co_return;
          continue;
        }
        if (!co_await room(side)) co_return;
        store(d.woken, 0u);
        store(d.state, static_cast<std::uint32_t>(SNIGATE_RELAY_RUNNING));
        if (kernel_.attach_source(fd, slot_, side)) {
          kick_verdict(fd);  // what waited is verdicted now, not when more arrives
          continue;
        }
        // Not ESTABLISHED any more: the FIN came while paused. Copy the rest, after every
        // redirected byte, which the drained() before each write makes sure of.
        store(d.state, static_cast<std::uint32_t>(SNIGATE_RELAY_DETACHED));
        in_kernel = false;
        continue;
      }
      if (!buffer) {
        size = read_size(src);
        buffer = std::make_unique_for_overwrite<char[]>(size);  // zeroing MiBs showed in profiles
      }
      ssize_t n = ::recv(fd, buffer.get(), size, MSG_DONTWAIT);
      if (n == 0) break;
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        co_return failed(side, errno_code(errno));
      }
      if (!co_await drained(side)) co_return;
      co_await asio::async_write(dst, asio::buffer(buffer.get(), static_cast<std::size_t>(n)),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ending_.ended()) co_return;
      if (ec) co_return failed(side ^ 1, ec);
      store(d.user_bytes, load(d.user_bytes) + static_cast<std::uint64_t>(n));
    }
    buffer.reset();
    // FIN from src: pass it on once the peer has every byte, keep the other way open.
    if (!co_await drained(side)) co_return;
    error_code ignored;
    dst.shutdown(tcp::socket::shutdown_send, ignored);
    if (++directions_done_ == 2) co_return finish(End::Clean);
    // src now only reads EOF; keep watching it for a reset while the peer still sends.
    for (;;) {
      error_code ec = co_await ready(side, tcp::socket::wait_error);
      if (ending_.ended() || directions_done_ == 2) co_return;
      if (ec) co_return failed(side, ec);
      if (int err = pending_error(src.native_handle()); err != 0)
        co_return failed(side, errno_code(err));
      // Hang-up without an error: the other direction is finishing; do not spin on it.
      if (!co_await pause(side, 10ms)) co_return;
    }
  }

  // Idle timeout and live counters from the kernel's counts, without touching the payload.
  asio::awaitable<void> tick() {
    const auto idle = options_.idle_timeout;
    const auto interval = std::clamp<std::chrono::milliseconds>(
        std::chrono::duration_cast<std::chrono::milliseconds>(idle / 4), 10ms, 1000ms);
    auto& c = kernel_.conn(slot_);
    auto total = [&c] {
      std::uint64_t t = 0;
      for (auto& d : c.dir) t += load(d.redirected) + load(d.user_bytes);
      return t;
    };
    std::uint64_t last = total();
    auto last_change = std::chrono::steady_clock::now();
    while (!ending_.ended()) {
      ticker_.expires_after(interval);
      error_code ec;
      co_await ticker_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (ending_.ended()) co_return;
      sync_counters();
      if (broken()) co_return;
      auto now = std::chrono::steady_clock::now();
      if (std::uint64_t t = total(); t != last) {
        last = t;
        last_change = now;
      } else if (now - last_change >= idle) {
        finish(End::IdleTimeout);
        close_both(false, false);
      }
    }
  }

  // A direction the program could not relay exactly once (relay_abi.h) drops every byte from
  // then on: reset both peers, so neither takes the stream it got for a whole one.
  bool broken() {
    for (int side : {kClient, kUpstream}) {
      const auto why = std::atomic_ref<__u32>(dir(side).broken).load(std::memory_order_acquire);
      if (!why) continue;
      finish(End::Error, std::string(side == kClient ? "client" : "upstream") +
                             " stream: " + broken_reason(why) + "; both sides reset");
      close_both(true, true);
      return true;
    }
    return false;
  }

  void finish(End end, std::string detail = {}) {
    if (ending_.finish(end, std::move(detail))) ticker_.cancel();
  }

  // The rules every relay shares (ending.h): a reset is passed on as a reset.
  void failed(int side, const error_code& ec) {
    if (auto close = ending_.failed(side == kClient, ec)) {
      ticker_.cancel();
      close_both(close->reset_client, close->reset_upstream);
    }
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
  asio::steady_timer ticker_;
  asio::steady_timer wake_;
  int running_ = 0;
  int directions_done_ = 0;
  Ending ending_;
};

}  // namespace

asio::awaitable<Result> watch_handoff(Kernel& kernel, std::uint32_t slot, tcp::socket& client,
                                      tcp::socket& upstream, const Options& options,
                                      Counters& counters) {
  Handoff handoff(kernel, slot, client, upstream, options, counters);
  co_return co_await handoff.run();
}

}  // namespace snigate::relay::sockmap
