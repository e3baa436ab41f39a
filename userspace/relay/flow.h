#pragma once
// What the userspace relays (copy, splice) share: one object per relayed connection, driven
// by callbacks. Each direction reads its source until it is known empty, writes what it
// read, and waits for readiness only then (net/ready_wait.h: a wait on a socket known empty,
// or after a write that stopped short, costs no system call, where asio's async_wait re-arms
// epoll with an EPOLL_CTL_MOD each time). Known empty: a read would block (EAGAIN), or the
// last read's TCP_INQ hint said nothing is left (copy; net/tcp_inq.h), and epoll has reported
// nothing on the socket since. A short read alone is not proof enough: a FIN or reset that
// came with those bytes raises no later wake-up, so without the hint one more read finds it.
// Between events a connection holds no coroutine frame, no buffer, no pipe and no timer of
// its own: buffers and pipes come from per-thread pools while a direction moves bytes, and
// the idle timeout is one sweep per event loop over every connection's last activity. Ends by
// ending.h's rules.
// Each event loop (io_context) is run by one thread, as the daemon's workers are.
#include <chrono>
#include <cstddef>
#include <memory>
#include <utility>

#include <boost/asio/ip/tcp.hpp>

#include "relay/ending.h"
#include "relay/idle_sweep.h"
#include "relay/relay.h"

namespace snigate::relay::detail {

class Flow : public Swept, public std::enable_shared_from_this<Flow> {
 public:
  Flow(tcp::socket& client, tcp::socket& upstream, const Options& options, Counters& counters,
       Relay::Done done);
  virtual ~Flow();
  Flow(const Flow&) = delete;
  Flow& operator=(const Flow&) = delete;

  // Starts both directions; call once, on the sockets' executor.
  void start();

 protected:
  static constexpr int kClientToUpstream = 0;
  static constexpr int kUpstreamToClient = 1;

  // Reads what direction `d`'s source has into what the relay holds for it (a buffer or a
  // pipe, taken if it holds none), at most `max` bytes. 0 with would_block when there is
  // nothing, with eof at the end of the stream.
  virtual std::size_t read(int d, tcp::socket& from, std::size_t max,
                           boost::system::error_code& ec) = 0;
  // The last read() on `d` returned bytes and proved nothing is left after them, no byte and
  // no FIN (TCP_INQ's hint, net/tcp_inq.h): the direction may wait without another read.
  virtual bool nothing_left(int /*d*/) const { return false; }
  // Writes up to `held` of the bytes held for `d` to `to`, in order; how many went out.
  virtual std::size_t write(int d, tcp::socket& to, std::size_t held,
                            boost::system::error_code& ec) = 0;
  // Direction `d` holds nothing and waits, or has ended (`empty` false: bytes may be lost in
  // what it held): give back its buffer or pipe.
  virtual void release(int d, bool empty) = 0;

  const Options& options() const { return options_; }
  tcp::socket& client() const { return *dir_[kClientToUpstream].from; }
  tcp::socket& upstream() const { return *dir_[kUpstreamToClient].from; }

  // For a relay that starts a connection on this flow and moves it elsewhere once it has
  // proven long (sockmap): asked whenever a direction has written all it held, unless the
  // other has ended. True: neither direction reads again, and once both have written all
  // they read the flow stops and calls leave().
  virtual bool leave_now() const { return false; }
  // The flow has stopped for good: no wait, buffer or pipe of its own is left (handlers
  // already queued return without acting), no byte it read is unwritten. `done` is the
  // caller's, for whoever takes the connection on.
  virtual void leave(Relay::Done /*done*/) {}

 private:
  struct Direction {
    tcp::socket* from;
    tcp::socket* to;
    std::atomic<std::uint64_t>* count;
    bool from_client;
    bool done = false;
    std::size_t held = 0;  // read, not yet written
    bool yielded = false;  // a pump is posted: it writes what it holds before it reads
    bool parked = false;   // reads no more until the flow leaves (leaving())
  };

  void wait_readable(int d);
  void wait_writable(int d);
  // Moves bytes on direction `d` until it would block, a bounded number of rounds per event.
  void pump(int d);
  // Asked when direction `d` has just written all it held: true when the flow has left, or
  // when `d` is parked until the other direction, busy writing, has written what it holds
  // and leaves. Never waits on a direction whose peer is slow to read: the two directions
  // stay independent (the other one's write wait unparks `d`).
  bool leaving(int d);
  bool stopped() const { return left_ || ending_.ended(); }
  // pump(d) from the event loop, after what it has queued.
  void pump_soon(int d);
  void eof(int d);
  void failed(bool client_side, const boost::system::error_code& ec);
  std::chrono::milliseconds idle_timeout() const override { return options_.idle_timeout; }
  bool due(std::chrono::steady_clock::time_point now) override {
    return now - last_activity_ >= options_.idle_timeout;
  }
  // The idle timeout.
  void swept_end() override;
  std::shared_ptr<void> hold() override { return shared_from_this(); }
  void close_both(const Ending::Close& close);
  // The connection has ended: give everything back and tell the caller.
  void end();

  Direction dir_[2];
  const Options& options_;
  Relay::Done done_;
  Ending ending_;
  bool left_ = false;  // leave() took the connection on
  std::chrono::steady_clock::time_point last_activity_;
};

// Starts a flow of type F (a Flow) on the two sockets; `extra` goes on to F's constructor.
template <typename F, typename... Extra>
void start_flow(tcp::socket& client, tcp::socket& upstream, const Options& options,
                Counters& counters, Relay::Done done, Extra&&... extra) {
  std::make_shared<F>(client, upstream, options, counters, std::move(done),
                      std::forward<Extra>(extra)...)
      ->start();
}

}  // namespace snigate::relay::detail
