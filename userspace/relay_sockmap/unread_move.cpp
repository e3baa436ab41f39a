#include "relay_sockmap/unread_move.h"

#include <sys/socket.h>

#include <cerrno>
#include <exception>
#include <memory>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "relay_sockmap/tcp_accounting.h"

namespace snigate::relay::sockmap {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

// Why until a read comes up short: the verdict reads whole skbs off the receive queue
// (tcp_read_skb) and ignores how much of the first one was read already, so an skb the
// session read part of (the preread stops where the hello ends) would be relayed again from
// its first byte. A read that stops short of a full buffer has taken every skb there was
// (tcp_recvmsg ends only when the queue and backlog are empty or the buffer is full), so from
// then on the queue holds only whole skbs nobody has read.
// Why both ways at once: one way at a time deadlocked with an echo backend (seen under auto
// with eight echo streams, handed off after 32 small reads): while the relay waited to write
// client bytes to the backend, nobody read the backend's answers, and the backend, unable to
// write them, read no more. A drained way keeps reading while the other still writes.
// Why an idle timeout: a peer that stops reading while the other still sends held the move,
// its buffers and the slot, for good.
struct Move {
  Move(tcp::socket& client, tcp::socket& upstream, Counters& counters,
       std::chrono::milliseconds idle_timeout)
      : from{&client, &upstream},
        count{&counters.client_to_upstream, &counters.upstream_to_client},
        wake{never(client), never(client)},
        idle(never(client)),
        upstream_done(never(client)),
        idle_timeout(idle_timeout) {}

  static asio::steady_timer never(tcp::socket& s) {
    return asio::steady_timer(s.get_executor(), asio::steady_timer::time_point::max());
  }

  tcp::socket* from[2];  // way w reads from[w] and writes from[w ^ 1]
  std::atomic<std::uint64_t>* count[2];
  asio::steady_timer wake[2];  // way w, its source ended, waits here
  asio::steady_timer idle;     // wakes when the idle timeout may have passed
  asio::steady_timer upstream_done;  // move_unread waits here for the upstream way's end
  std::optional<Moved> upstream_moved;
  const std::chrono::milliseconds idle_timeout;
  Clock::time_point last_progress = Clock::now();
  bool drained[2] = {false, false};
  bool over = false;   // both drained at once, a way gave up or failed, or timed out
  bool idled = false;  // timed out

  // Ends the move for both ways, from way w: the other wakes from its wait on its source or
  // its timer. A write of the other's is left to finish: cancelled, it would lose what it
  // read and had not written yet.
  void end(int w) {
    over = true;
    error_code ignored;
    from[w ^ 1]->cancel(ignored);
    wake[w ^ 1].cancel();
  }

  // The idle timeout: every wait ends, writes too, and the connection with them.
  void time_out() {
    over = idled = true;
    for (int w : {0, 1}) {
      error_code ignored;
      from[w]->cancel(ignored);
      wake[w].cancel();
    }
  }

  // What a way that found the move over reports: the way that ended it reports its own end.
  Moved ended() const { return {idled ? Moved::End::IdleTimeout : Moved::End::Drained, {}}; }
};

// One timer for the whole move, re-armed only when it fires: progress costs no timer call.
void watch_idle(const std::shared_ptr<Move>& m) {
  m->idle.expires_at(m->last_progress + m->idle_timeout);
  m->idle.async_wait([m](const error_code& ec) {
    if (ec || m->over) return;
    if (Clock::now() - m->last_progress >= m->idle_timeout) return m->time_out();
    watch_idle(m);
  });
}

// One way of a Move. GaveUp when every read filled the buffer for a bounded number of rounds
// (a sender faster than this loop).
asio::awaitable<Moved> move_way(std::shared_ptr<Move> m, int w) {
  tcp::socket& from = *m->from[w];
  tcp::socket& to = *m->from[w ^ 1];
  constexpr std::size_t size = 1u << 20;
  std::unique_ptr<char[]> buffer;
  bool ended = false;  // EOF or a reset, which the relay then sees and reports
  for (int round = 0; round < 64;) {
    if (m->over) co_return m->ended();
    ssize_t n = 0;
    if (!ended) {
      if (!buffer) buffer = std::make_unique_for_overwrite<char[]>(size);
      n = ::recv(from.native_handle(), buffer.get(), size, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) ended = true;
    }
    if (n > 0) {
      ++round;
      m->last_progress = Clock::now();
      m->drained[w] = false;
      // Write by write, so each counts as progress and as bytes moved (counted before the
      // move may be found over).
      for (std::size_t at = 0; at < static_cast<std::size_t>(n);) {
        error_code ec;
        const std::size_t k = co_await to.async_write_some(
            asio::buffer(buffer.get() + at, static_cast<std::size_t>(n) - at),
            asio::redirect_error(asio::use_awaitable, ec));
        at += k;
        *m->count[w] += k;
        if (k > 0) m->last_progress = Clock::now();
        if (m->idled) co_return m->ended();
        if (ec) {
          m->end(w);
          co_return Moved{Moved::End::Failed, ec};
        }
      }
      if (m->over) co_return m->ended();
      if (static_cast<std::size_t>(n) == size) continue;
    }
    // Drained: over if the other way is too (it waits, holding nothing); else wait for more
    // to read, or for the other way to end the move.
    m->drained[w] = true;
    if (m->drained[w ^ 1]) {
      m->end(w);
      co_return Moved{};
    }
    error_code ignored;
    if (ended)
      co_await m->wake[w].async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    else
      co_await from.async_wait(tcp::socket::wait_read,
                               asio::redirect_error(asio::use_awaitable, ignored));
  }
  m->end(w);
  co_return Moved{Moved::End::GaveUp, {}};
}

}  // namespace

asio::awaitable<Moved> move_unread(tcp::socket& client, tcp::socket& upstream,
                                   Counters& counters, std::chrono::milliseconds idle_timeout) {
  if (unread_bytes(client.native_handle()) == 0 && unread_bytes(upstream.native_handle()) == 0)
    co_return Moved{};
  auto m = std::make_shared<Move>(client, upstream, counters, idle_timeout);
  watch_idle(m);
  // The upstream way on its own coroutine; its end comes back through the Move.
  asio::co_spawn(client.get_executor(), move_way(m, 1), [m](std::exception_ptr e, Moved moved) {
    if (e) {
      m->end(1);
      moved = {Moved::End::Failed, asio::error::fault};
    }
    m->upstream_moved = moved;
    m->upstream_done.cancel();
  });
  Moved forth = co_await move_way(m, 0);
  if (!m->upstream_moved) {
    error_code ignored;
    co_await m->upstream_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  m->idle.cancel();
  if (m->idled) co_return Moved{Moved::End::IdleTimeout, {}};
  co_return forth.end != Moved::End::Drained ? forth : *m->upstream_moved;
}

}  // namespace snigate::relay::sockmap
