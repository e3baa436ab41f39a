#pragma once
// What every accept loop (listeners, control socket, remote ban channel) does when accept
// fails: out of descriptors or memory, retrying at once would spin a core while the queued
// clients wait, so it pauses and says so at most once per interval.
#include <string_view>
#include <utility>  // Boost 1.74 awaitable.hpp uses std::exchange without including it

#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include "net/throttled_warning.h"

namespace snigate::net {

// Logs `who: accept failed: ...` when `warning` is due, then waits 100 ms on the calling
// coroutine's executor.
boost::asio::awaitable<void> back_off_after_accept_error(std::string_view who,
                                                         const boost::system::error_code& ec,
                                                         ThrottledWarning& warning);

}  // namespace snigate::net
