#include "relay_sockmap/sockmap_relay.h"

#include <memory>
#include <mutex>

#include <boost/asio/co_spawn.hpp>
#include <spdlog/spdlog.h>

#include "relay/copy_relay.h"
#include "relay_sockmap/handoff.h"
#include "relay_sockmap/tcp_accounting.h"
#include "relay_sockmap/unread_move.h"

namespace snigate::relay {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr int kClient = SNIGATE_RELAY_CLIENT;
constexpr int kUpstream = SNIGATE_RELAY_UPSTREAM;

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
      client.get_executor(), prepare(client, upstream, options, counters),
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
          case Prepared::Next::IdleTimeout:
            return done(Result{End::IdleTimeout, {}});
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
                                                              const Options& options,
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
  const auto moved =
      co_await sockmap::move_unread(client, upstream, counters, options.idle_timeout);
  if (moved.end == sockmap::Moved::End::IdleTimeout) {
    // Bytes read and not written are gone: a FIN would pass the stream off as whole.
    kernel_->release(*slot);
    error_code ignored;
    for (tcp::socket* s : {&client, &upstream}) {
      s->set_option(tcp::socket::linger(true, 0), ignored);
      s->close(ignored);
    }
    co_return Prepared{Prepared::Next::IdleTimeout};
  }
  if (moved.end != sockmap::Moved::End::Drained) {
    // A peer that resets or fails now, or one that never lets its queue empty: the
    // userspace relay takes the connection (and reports a failure the usual way).
    spdlog::debug("relay: sockmap handoff skipped ({}), connection runs on {}",
                  moved.end == sockmap::Moved::End::GaveUp ? "receive queues never emptied"
                                                          : moved.error.message(),
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
