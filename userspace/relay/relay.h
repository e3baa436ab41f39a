#pragma once
// The relay seam: after the session has connected upstream and replayed the preread bytes, a
// Relay moves the payload both ways until the connection ends. Implementations: copy and
// splice (userspace), sockmap (kernel-side, issue 3).
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>  // Boost 1.74 awaitable.hpp uses std::exchange without including it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "relay/mode.h"

namespace snigate::relay {

using boost::asio::ip::tcp;

// How a relayed connection ended, in the access log's words.
enum class End { Clean, ClientReset, UpstreamReset, IdleTimeout, Aborted, Error };
const char* to_string(End end);

// Why a connection the sockmap relay took runs on a userspace relay instead: no free slot,
// a side that would not let its receive queue empty (or failed) before the handoff, or the
// kernel refusing a socket into the sockhash (a side already half-closed).
enum class Fallback { None, SlotsExhausted, HandoffSkipped, InsertRefused, Count };
inline constexpr std::size_t kFallbacks = static_cast<std::size_t>(Fallback::Count);
const char* to_string(Fallback fallback);

// A connection's live relay state, read from other threads (snigatectl conns) while it runs.
struct Counters {
  std::atomic<std::uint64_t> client_to_upstream{0};
  std::atomic<std::uint64_t> upstream_to_client{0};
  // The relay that moves the bytes: each relay sets it when it starts, so a connection that
  // sockmap hands to its fallback names the fallback. Auto until then. What `snigatectl
  // conns` and the access log show.
  std::atomic<Mode> mode{Mode::Auto};
  // Set by the sockmap relay when it hands the connection to its fallback, for the metrics.
  std::atomic<Fallback> fallback{Fallback::None};
};

struct Options {
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};
  // Per direction; bounds what a connection holds in userspace while one side reads slowly.
  // 32 KiB: a copy buffer that stays in a core's L1 data cache (32-48 KiB) between the read
  // and the write; 64 KiB cost the copy relay 10-25 % more CPU per GiB in the bench, 16 KiB
  // more system calls. Also splice's pipe size and most per splice(2) call.
  std::size_t buffer_bytes = 32 * 1024;
};

struct Result {
  End end = End::Clean;
  std::string detail;  // for the log when end is Error
};

class Relay {
 public:
  // Called once, on the sockets' executor, with how the connection ended.
  using Done = std::function<void(Result)>;

  virtual ~Relay() = default;
  virtual Mode mode() const = 0;
  // Whether connections may take pipes of the process's pool (relay/pipe_pool.h), which the
  // descriptor budget must then keep room for.
  virtual bool uses_pipes() const { return false; }
  // Starts relaying and returns at once; `done` gets the result when the connection has
  // ended: both directions closed (a FIN is passed on per direction, the other direction
  // keeps flowing), a side reset (the reset is passed on), the idle timeout fired, or someone
  // closed the sockets (a ban, a forced stop): End::Aborted. Safe to call concurrently from
  // several event loops.
  // Ownership: the caller owns both sockets, `options` and `counters`, and keeps them alive
  // until `done` has run. On End::Clean both sockets are left open with every byte queued,
  // for the caller to close. On any other end the relay has closed both already (the
  // caller's close is then a no-op): with RST towards the side whose peer reset; on an idle
  // timeout with FIN under copy and splice but RST under sockmap (sockmap_relay.h, step 7).
  // A relay implements start() or run(); each defaults to the other. The userspace relays
  // implement start(): between events they hold no coroutine frame, buffer, pipe or timer.
  virtual void start(tcp::socket& client, tcp::socket& upstream, const Options& options,
                     Counters& counters, Done done);
  // start() as a coroutine: returns what `done` got.
  virtual boost::asio::awaitable<Result> run(tcp::socket& client, tcp::socket& upstream,
                                             const Options& options, Counters& counters);

 protected:
  // Runs `relay` on `ex`; `done` gets its result (an exception as End::Error).
  static void spawn(const tcp::socket::executor_type& ex, boost::asio::awaitable<Result> relay,
                    Done done);
};

}  // namespace snigate::relay
