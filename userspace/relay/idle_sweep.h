#pragma once
// One timer per event loop for the idle timeout of every connection relayed on it, instead
// of a timer per connection: an idle connection then holds no wait of its own. The sweep
// ticks while connections are listed (every quarter of the shortest idle timeout listed,
// within 10 ms..1 s) and asks each whether it has to end, so a connection ends between its
// idle timeout and that plus a tick after its last byte. Used by the userspace relays' flows
// and by the sockmap relay's handed-off connections (which also refresh their live counters
// from the kernel's on each tick). Each event loop is run by one thread, as the daemon's
// workers are.
#include <chrono>
#include <memory>

#include <boost/asio/any_io_executor.hpp>

namespace snigate::relay::detail {

class IdleSweep;

// A connection the sweep of its event loop visits while it is listed.
class Swept {
 public:
  Swept() = default;
  Swept(const Swept&) = delete;
  Swept& operator=(const Swept&) = delete;

 protected:
  ~Swept() { unlist(); }

  // Lists this on the sweep of `ex`'s event loop, from that loop's thread; at most once.
  void list(const boost::asio::any_io_executor& ex);
  // Off the sweep's list (a no-op when not listed).
  void unlist();

 private:
  friend class IdleSweep;

  virtual std::chrono::milliseconds idle_timeout() const = 0;
  // On each tick: whether this has to end now. It must not end here (nor list or unlist
  // anything): the sweep calls swept_end() once it has visited everyone.
  virtual bool due(std::chrono::steady_clock::time_point now) = 0;
  virtual void swept_end() = 0;
  // Keeps this alive while the sweep ends it.
  virtual std::shared_ptr<void> hold() = 0;

  IdleSweep* sweep_ = nullptr;  // while listed
  Swept* prev_ = nullptr;
  Swept* next_ = nullptr;
};

}  // namespace snigate::relay::detail
