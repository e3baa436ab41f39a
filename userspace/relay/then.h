#pragma once
// A userspace relay that starts a connection and hands it on once the connection has proven
// worth it: the sockmap relay's step 0 (relay_sockmap/sockmap_relay.h).
#include <cstddef>
#include <cstdint>
#include <limits>

#include "relay/relay.h"

namespace snigate::relay {

// When a connection has proven worth handing to the kernel (start_then): once either
// direction has moved `bytes`, or once `small_reads` reads in a row, either way, each found
// less than kSmallRead. Such a read paid a wake-up and two system calls for a page or less, a
// request or an answer that the kernel's redirect delivers sooner (README, "Under relay =
// \"sockmap\""); a bulk stream's reads fill the buffer, and there userspace costs less CPU per
// byte.
struct HandoffProof {
  static constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();
  static constexpr std::size_t kSmallRead = 4096;
  // 16 requests and their answers.
  static constexpr std::uint64_t kDefaultSmallReads = 32;
  std::uint64_t bytes = 0;
  std::uint64_t small_reads = kNever;
};

// What a relay hands its connection to once the connection has met its proof (start_then).
class Takeover {
 public:
  // The relay has stopped: no wait of its own is left on either socket, and every byte it
  // read is written. Arguments as Relay::start's.
  virtual void take_over(tcp::socket& client, tcp::socket& upstream, const Options& options,
                         Counters& counters, Relay::Done done) = 0;

 protected:
  ~Takeover() = default;
};

class HandingRelay : public Relay {
 public:
  // start(), until the connection has met `proof` (bytes from `counters`, so what the session
  // sent first counts) and both directions have written all they read: then the relay stops
  // and calls then.take_over() with the same arguments. `then` outlives the connection.
  virtual void start_then(tcp::socket& client, tcp::socket& upstream, const Options& options,
                          Counters& counters, Done done, const HandoffProof& proof,
                          Takeover& then) = 0;
};

}  // namespace snigate::relay
