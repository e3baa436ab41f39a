#pragma once
// Step 2 of the hand-off (sockmap_relay.h): what each socket holds unread moves to its peer in
// userspace, both ways at once, until a read on each finds its receive queue empty while the
// other way holds nothing. From then on both queues hold only whole skbs nobody has read,
// which the verdict may take.
#include <chrono>
#include <utility>  // Boost 1.74 awaitable.hpp uses std::exchange without including it

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include "relay/relay.h"

namespace snigate::relay::sockmap {

struct Moved {
  enum class End {
    Drained,  // both queues found empty at once, nothing held: the kernel may take over
    GaveUp,   // a sender faster than the move: nothing held, a userspace relay goes on
    Failed,   // a way failed (`error`): nothing held, a userspace relay goes on and reports it
    // No byte moved either way for the idle timeout (a peer that neither reads nor sends):
    // what a way held unwritten is dropped, so the connection ends here.
    IdleTimeout,
  };
  End end = End::Drained;
  boost::system::error_code error;
};

// Counts what it writes each way into `counters`. Each read is written before the next, so
// unless it timed out nothing is held when it returns.
boost::asio::awaitable<Moved> move_unread(tcp::socket& client, tcp::socket& upstream,
                                          Counters& counters,
                                          std::chrono::milliseconds idle_timeout);

}  // namespace snigate::relay::sockmap
