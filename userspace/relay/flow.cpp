#include "relay/flow.h"

#include <sys/socket.h>

#include <boost/asio/post.hpp>

#include "net/ready_wait.h"

namespace snigate::relay::detail {

namespace asio = boost::asio;
using boost::system::error_code;

Flow::Flow(tcp::socket& client, tcp::socket& upstream, const Options& options,
           Counters& counters, Relay::Done done)
    : dir_{{&client, &upstream, &counters.client_to_upstream, true},
           {&upstream, &client, &counters.upstream_to_client, false}},
      options_(options),
      done_(std::move(done)),
      last_activity_(std::chrono::steady_clock::now()) {}

Flow::~Flow() = default;

void Flow::start() {
  // Reads, writes and splices on a blocking socket would block the event loop. asio's user
  // flag means O_NONBLOCK is set on the descriptor (its internal one alone does not say so);
  // checking it first spares an ioctl per socket already set (the daemon's are born
  // non-blocking, net/nonblocking_socket.h).
  for (tcp::socket* s : {dir_[kClientToUpstream].from, dir_[kUpstreamToClient].from}) {
    error_code ignored;
    if (!s->non_blocking()) s->non_blocking(true, ignored);
  }
  list(dir_[0].from->get_executor());
  // A source known empty (the session's preread proved the client's) waits at once; any
  // other is read now, which moves what it has (the upstream's answer may be in already) or
  // proves it empty. Read here rather than from a posted handler: the post cost 87 B of RSS
  // per idle connection in the bench (5,000 connections), for at most a stale wake-up's read.
  for (int d : {kClientToUpstream, kUpstreamToClient}) {
    if (stopped()) return;  // the first direction's read ended or handed off the connection
    if (net::known_empty(*dir_[d].from))
      wait_readable(d);
    else
      pump(d);
  }
}

void Flow::wait_readable(int d) {
  net::async_wait_after_would_block(*dir_[d].from, tcp::socket::wait_read,
                                    [self = shared_from_this(), d](const error_code& ec) {
                                      if (self->stopped()) return;
                                      if (ec) return self->failed(self->dir_[d].from_client, ec);
                                      self->pump(d);
                                    });
}

void Flow::wait_writable(int d) {
  net::async_wait_after_would_block(*dir_[d].to, tcp::socket::wait_write,
                                    [self = shared_from_this(), d](const error_code& ec) {
                                      if (self->stopped()) return;
                                      if (ec) return self->failed(!self->dir_[d].from_client, ec);
                                      self->pump(d);
                                    });
}

void Flow::pump(int d) {
  Direction& dir = dir_[d];
  const std::size_t size = options_.buffer_bytes;
  for (int round = 0; round < 16; ++round) {
    error_code ec;
    if (dir.held > 0) {
      std::size_t n = write(d, *dir.to, dir.held, ec);
      dir.held -= n;
      *dir.count += n;
      if (dir.held > 0) {
        if (ec && ec != asio::error::would_block && ec != asio::error::try_again)
          return failed(!dir.from_client, ec);
        // No leaving while this waits for its peer: the other direction goes on meanwhile.
        // Parked, it stopped without reading to EAGAIN: it reads before it may wait.
        if (dir_[d ^ 1].parked) {
          dir_[d ^ 1].parked = false;
          pump_soon(d ^ 1);
        }
        return wait_writable(d);
      }
      if (leaving(d)) return;
    }
    // The last read left nothing and epoll has reported nothing since: the read that would
    // return EAGAIN is not needed.
    if (net::known_empty(*dir.from)) {
      release(d, true);
      return wait_readable(d);
    }
    std::size_t n = read(d, *dir.from, size, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      net::note_read(*dir.from, net::ReadShowed::WouldBlock);
      release(d, true);
      return wait_readable(d);
    }
    if (ec == asio::error::eof) return eof(d);
    if (ec) return failed(dir.from_client, ec);
    net::note_read(*dir.from,
                   nothing_left(d) ? net::ReadShowed::NothingLeft : net::ReadShowed::MaybeMore);
    dir.held = n;
    last_activity_ = std::chrono::steady_clock::now();
  }
  // A busy direction yields to the other connections of this event loop.
  pump_soon(d);
}

void Flow::pump_soon(int d) {
  dir_[d].yielded = true;
  asio::post(dir_[d].from->get_executor(), [self = shared_from_this(), d] {
    self->dir_[d].yielded = false;
    if (!self->stopped()) self->pump(d);
  });
}

bool Flow::leaving(int d) {
  const Direction& other = dir_[d ^ 1];
  if (other.done || !leave_now()) return false;
  if (other.held > 0) {
    // Waiting for its peer to read: no telling when, so `d` goes on as before.
    if (!other.yielded) return false;
    // About to write: `d` reads no more (it waits for nothing, holds no buffer), and the
    // other leaves once it has written what it holds, finding nothing held here.
    release(d, true);
    dir_[d].parked = true;
    return true;
  }
  left_ = true;
  unlist();
  for (int side : {kClientToUpstream, kUpstreamToClient}) release(side, true);
  // The other direction may wait to read: that wait goes, so nothing of this flow reads
  // either socket again. Both sockets, as either is one direction's source.
  error_code ignored;
  dir_[kClientToUpstream].from->cancel(ignored);
  dir_[kUpstreamToClient].from->cancel(ignored);
  auto done = std::move(done_);
  leave(std::move(done));
  return true;
}

void Flow::eof(int d) {
  Direction& dir = dir_[d];
  release(d, true);
  dir.done = true;
  // The last direction's FIN goes with the caller's close: both sources have ended, so
  // nothing unread is left to turn the close into a reset, and a shutdown first would only
  // cost a system call.
  if (dir_[d ^ 1].done) {
    if (ending_.finish(End::Clean)) end();
    return;
  }
  // The FIN goes on to the other side; the other direction keeps flowing.
  error_code ignored;
  dir.to->shutdown(tcp::socket::shutdown_send, ignored);
}

void Flow::failed(bool client_side, const error_code& ec) {
  if (auto close = ending_.failed(client_side, ec)) {
    close_both(*close);
    end();
  }
}

void Flow::swept_end() {
  if (!ending_.finish(End::IdleTimeout)) return;
  close_both({});
  end();
}

void Flow::close_both(const Ending::Close& close) {
  tcp::socket& client = *dir_[kClientToUpstream].from;
  tcp::socket& upstream = *dir_[kUpstreamToClient].from;
  error_code ignored;
  // SO_LINGER {1, 0}: close() sends RST instead of FIN (tcp(7)), so the peer sees the reset.
  if (close.reset_client && client.is_open())
    client.set_option(tcp::socket::linger(true, 0), ignored);
  if (close.reset_upstream && upstream.is_open())
    upstream.set_option(tcp::socket::linger(true, 0), ignored);
  client.close(ignored);
  upstream.close(ignored);
}

void Flow::end() {
  unlist();
  for (int d : {kClientToUpstream, kUpstreamToClient}) release(d, dir_[d].held == 0);
  // Moved out first: what it holds (the caller's connection) goes when it returns.
  auto done = std::move(done_);
  done(ending_.result());
}

}  // namespace snigate::relay::detail
