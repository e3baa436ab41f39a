#include "relay_sockmap/sockmap_relay.h"

#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <mutex>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "relay/copy_relay.h"
#include "relay_sockmap/handoff.h"
#include "relay_sockmap/tcp_accounting.h"

namespace snigate::relay {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr int kClient = SNIGATE_RELAY_CLIENT;
constexpr int kUpstream = SNIGATE_RELAY_UPSTREAM;

// Step 2's move, both ways at once (move_unread): each way reads its source and writes what
// it read to the other socket, before reading again, until both sources are found drained
// at once. The verdict reads whole skbs off the receive queue (tcp_read_skb) and ignores how
// much of the first one was read already, so an skb the session read part of (the preread
// stops where the hello ends) would be relayed again from its first byte. A read that stops
// short of a full buffer has taken every skb there was (tcp_recvmsg ends only when the queue
// and backlog are empty or the buffer is full), so from then on the queue holds only whole
// skbs nobody has read, which the verdict may take. A drained way keeps reading while the
// other still writes: one way at a time deadlocked with an echo backend (seen under auto with
// eight echo streams, handed off after 32 small reads): while the relay waited to write
// client bytes to the backend, nobody read the backend's answers, and the backend, unable to
// write them, read no more.
struct Move {
  Move(tcp::socket& client, tcp::socket& upstream, Counters& counters)
      : from{&client, &upstream},
        count{&counters.client_to_upstream, &counters.upstream_to_client},
        wake{asio::steady_timer(client.get_executor(), asio::steady_timer::time_point::max()),
             asio::steady_timer(client.get_executor(), asio::steady_timer::time_point::max())} {}
  tcp::socket* from[2];  // way w reads from[w] and writes from[w ^ 1]
  std::atomic<std::uint64_t>* count[2];
  asio::steady_timer wake[2];  // way w, ended, waits here
  bool drained[2] = {false, false};
  bool over = false;  // both drained at once, or a way failed: every way stops
  // Ends the move for both ways, from way w: the other wakes from its wait on its source or
  // its timer. A write of the other's is left to finish: cancelled, it would lose what it
  // read and had not written yet.
  void end(int w) {
    over = true;
    error_code ignored;
    from[w ^ 1]->cancel(ignored);
    wake[w ^ 1].cancel();
  }
};

// One way of a Move. Nullopt when every read filled the buffer for a bounded number of
// rounds (a sender faster than this loop): the caller relays in userspace. Each read is
// written before the next, so nothing is held when it returns.
asio::awaitable<std::optional<error_code>> move_way(Move& m, int w) {
  tcp::socket& from = *m.from[w];
  tcp::socket& to = *m.from[w ^ 1];
  constexpr std::size_t size = 1u << 20;
  std::unique_ptr<char[]> buffer;
  bool ended = false;  // EOF or a reset, which the relay then sees and reports
  for (int round = 0; round < 64;) {
    if (m.over) co_return error_code{};
    ssize_t n = 0;
    if (!ended) {
      if (!buffer) buffer = std::make_unique_for_overwrite<char[]>(size);
      n = ::recv(from.native_handle(), buffer.get(), size, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) ended = true;
    }
    if (n > 0) {
      ++round;
      m.drained[w] = false;
      error_code ec;
      co_await asio::async_write(to, asio::buffer(buffer.get(), static_cast<std::size_t>(n)),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        m.end(w);
        co_return ec;
      }
      *m.count[w] += static_cast<std::uint64_t>(n);
      if (m.over) co_return error_code{};
      if (static_cast<std::size_t>(n) == size) continue;
    }
    // Drained: over if the other way is too (it waits, holding nothing); else wait for more
    // to read, or for the other way to end the move.
    m.drained[w] = true;
    if (m.drained[w ^ 1]) {
      m.end(w);
      co_return error_code{};
    }
    error_code ignored;
    if (ended)
      co_await m.wake[w].async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    else
      co_await from.async_wait(tcp::socket::wait_read,
                               asio::redirect_error(asio::use_awaitable, ignored));
  }
  m.end(w);
  co_return std::nullopt;
}

// Moves what each socket holds unread to its peer, in userspace, both ways at once (Move),
// until a read on each finds its receive queue empty while the other way holds nothing:
// from then on both queues hold only whole skbs nobody has read. Nullopt, or the first
// error, when a way gave up (move_way): nothing is held, and the caller relays in userspace.
asio::awaitable<std::optional<error_code>> move_unread(tcp::socket& client, tcp::socket& upstream,
                                                       Counters& counters) {
  if (sockmap::unread_bytes(client.native_handle()) == 0 &&
      sockmap::unread_bytes(upstream.native_handle()) == 0)
    co_return error_code{};
  Move m(client, upstream, counters);
  // The upstream way on its own coroutine; its result comes back through `back`.
  struct Back {
    std::optional<std::optional<error_code>> result;
    asio::steady_timer done;
  };
  auto back = std::make_shared<Back>(
      Back{std::nullopt, asio::steady_timer(client.get_executor(),
                                            asio::steady_timer::time_point::max())});
  asio::co_spawn(client.get_executor(), move_way(m, 1),
                 [back, &m](std::exception_ptr e, std::optional<error_code> r) {
                   if (e) m.end(1);
                   back->result = e ? std::optional<error_code>(asio::error::fault) : r;
                   back->done.cancel();
                 });
  auto forth = co_await move_way(m, 0);
  if (!back->result) {
    error_code ignored;
    co_await back->done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  if (!forth || *forth) co_return forth;
  co_return *back->result;
}

}  // namespace

std::shared_ptr<SockmapRelay> SockmapRelay::create(std::shared_ptr<Relay> fallback,
                                                   std::string* reason,
                                                   const sockmap::KernelOptions& options,
                                                   const HandoffProof& proof,
                                                   std::shared_ptr<HandingRelay> first) {
  // One set of programs and maps per process: a reload's relay shares them with the relay
  // whose connections still run.
  static std::mutex mutex;
  static std::weak_ptr<sockmap::Kernel> shared;
  std::lock_guard lock(mutex);
  auto kernel = shared.lock();
  if (kernel) {
    kernel->set_inflight_cap(options.inflight_cap);
  } else {
    kernel = sockmap::Kernel::open(options, reason);
    if (!kernel) return nullptr;
    shared = kernel;
  }
  if (!first) first = std::make_shared<CopyRelay>();
  return std::make_shared<SockmapRelay>(std::move(kernel), std::move(fallback), proof,
                                        std::move(first));
}

void SockmapRelay::start(tcp::socket& client, tcp::socket& upstream, const Options& options,
                         Counters& counters, Done done) {
  if (proof_.bytes == 0) return take_over(client, upstream, options, counters, std::move(done));
  first_->start_then(client, upstream, options, counters, std::move(done), proof_, *this);
}

void SockmapRelay::take_over(tcp::socket& client, tcp::socket& upstream, const Options& options,
                             Counters& counters, Done done) {
  asio::co_spawn(
      client.get_executor(), prepare(client, upstream, counters),
      [this, &client, &upstream, &options, &counters, done = std::move(done)](
          std::exception_ptr e, Prepared p) mutable {
        if (e) {
          Result result{End::Error, {}};
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            result.detail = x.what();
          }
          error_code ignored;
          client.close(ignored);
          upstream.close(ignored);
          return done(std::move(result));
        }
        switch (p.next) {
          case Prepared::Next::Aborted:
            return done(Result{End::Aborted, {}});
          case Prepared::Next::Fallback:
            return fallback_->start(client, upstream, options, counters, std::move(done));
          case Prepared::Next::Watch:
            break;
        }
        sockmap::watch_handoff(
            *kernel_, p.slot, client, upstream, options, counters,
            [this, p, &client, &upstream, done = std::move(done)](Result result) {
              if (result.end == End::Clean) {
                // Every byte is in the send queues: the caller's close must let TCP deliver
                // them.
                error_code ignored;
                client.set_option(tcp::socket::linger(false, 0), ignored);
                upstream.set_option(tcp::socket::linger(false, 0), ignored);
              }
              forget(p);
              done(std::move(result));
            });
      });
}

void SockmapRelay::forget(const Prepared& p) {
  kernel_->remove(p.slot, kClient);
  kernel_->remove(p.slot, kUpstream);
  for (auto cookie : p.cookies)
    if (cookie) kernel_->unindex(cookie);
  kernel_->release(p.slot);
}

asio::awaitable<SockmapRelay::Prepared> SockmapRelay::prepare(tcp::socket& client,
                                                              tcp::socket& upstream,
                                                              Counters& counters) {
  // Closed between the copy's end and this (a ban, a stop): nothing is left to relay.
  if (!client.is_open() || !upstream.is_open()) {
    error_code ignored;
    client.close(ignored);
    upstream.close(ignored);
    co_return Prepared{};
  }
  const int fds[2] = {client.native_handle(), upstream.native_handle()};
  auto slot = kernel_->acquire();
  if (!slot) {
    spdlog::debug("relay: sockmap slots exhausted, connection runs on {}",
                  to_string(fallback_->mode()));
    counters.fallback = Fallback::SlotsExhausted;
    co_return Prepared{Prepared::Next::Fallback};
  }
  auto moved = co_await move_unread(client, upstream, counters);
  if (!moved || *moved) {
    // A peer that resets or fails now, or one that never lets its queue empty: the
    // userspace relay takes the connection (and reports a failure the usual way).
    spdlog::debug("relay: sockmap handoff skipped ({}), connection runs on {}",
                  moved ? moved->message() : "receive queues never emptied",
                  to_string(fallback_->mode()));
    kernel_->release(*slot);
    counters.fallback = Fallback::HandoffSkipped;
    co_return Prepared{Prepared::Next::Fallback};
  }
  // Bytes the session wrote to each side before the handoff: the base of the flow control.
  // Directions start RUNNING (the slot is zeroed).
  auto& conn = kernel_->conn(*slot);
  for (int side : {kClient, kUpstream}) {
    auto written = sockmap::bytes_written(fds[side ^ 1]);
    conn.dir[side].peer_base = written.value_or(0);
    // A paused direction waits in this receive queue: bound it (autotuning took one to
    // 33 MiB), a little above what the cap lets through meanwhile.
    sockmap::clamp_receive_buffer(fds[side], kernel_->inflight_cap());
  }
  Prepared p{Prepared::Next::Watch, *slot,
             {kernel_->index(fds[kClient], *slot, kClient),
              kernel_->index(fds[kUpstream], *slot, kUpstream)}};
  std::string why;
  bool inserted_upstream = p.cookies[0] && p.cookies[1] &&
                           kernel_->insert(fds[kUpstream], *slot, kUpstream, &why);
  if (!inserted_upstream || !kernel_->insert(fds[kClient], *slot, kClient, &why)) {
    // A side that is not ESTABLISHED any more (half-closed early) cannot join a sockhash.
    // No program ran on either socket, so nothing waits in a psock: out, and the fallback.
    spdlog::debug("relay: sockmap handoff refused ({}), connection runs on {}", why,
                  to_string(fallback_->mode()));
    counters.fallback = Fallback::InsertRefused;
    forget(p);
    co_return Prepared{Prepared::Next::Fallback};
  }
  // A source the kernel refuses (its FIN came in) starts paused: its watcher finds it cannot
  // rejoin and copies the rest in userspace.
  for (int side : {kUpstream, kClient})
    if (!kernel_->attach_source(fds[side], *slot, side))
      conn.dir[side].state = SNIGATE_RELAY_DETACHED;
  // Bytes that arrived before the insertion wait for the verdict until more come.
  sockmap::kick_verdict(fds[kUpstream]);
  sockmap::kick_verdict(fds[kClient]);
  // Whoever closes these sockets while the kernel relays (a ban, a stop) resets both peers:
  // the bytes held in the psocks are not TCP's unread data, so a plain close would send a FIN
  // and leave a peer writing into a zero window until the orphan times out.
  error_code ignored;
  client.set_option(tcp::socket::linger(true, 0), ignored);
  upstream.set_option(tcp::socket::linger(true, 0), ignored);
  counters.mode = Mode::Sockmap;
  co_return p;
}

}  // namespace snigate::relay
