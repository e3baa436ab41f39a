#pragma once
// Zero-copy in userspace terms: splice(2) moves pages socket -> pipe -> socket inside the
// kernel, one pipe per direction. Readiness comes from the event loop (net/ready_wait.h).
#include <cstddef>
#include <string>

#include "relay/relay.h"
#include "relay/then.h"

namespace snigate::relay {

class SpliceRelay final : public HandingRelay {
 public:
  // Which bursts of a direction go through a pipe (a burst: what a direction moves from a
  // wake-up until its source is empty). All: relay = "splice". Bulk (relay = "auto"): a burst
  // starts by copy, as relay = "copy" moves it, and takes a pipe once one of its reads has
  // filled the buffer while another burst on the same worker thread has too. Requests,
  // answers and short connections keep copy's TCP_INQ hint and its one read per burst; one
  // stream alone keeps copy's buffer hot in the core's cache, where copy led splice in the
  // bench; streams both ways or side by side evict each other's buffers, and there splice,
  // copying nothing, led (README, the bench). A connection is relay=splice in the log from
  // its first pipe on.
  enum class Bursts { All, Bulk };
  explicit SpliceRelay(Bursts bursts = Bursts::All) : bursts_(bursts) {}

  Mode mode() const override { return Mode::Splice; }
  bool uses_pipes() const override { return true; }
  void start(tcp::socket& client, tcp::socket& upstream, const Options& options,
             Counters& counters, Done done) override;
  void start_then(tcp::socket& client, tcp::socket& upstream, const Options& options,
                  Counters& counters, Done done, const HandoffProof& proof,
                  Takeover& then) override;
  // Whether this kernel has splice(2) for sockets and pipes; the reason when it has not.
  static bool available(std::string* reason);

 private:
  const Bursts bursts_;
};

}  // namespace snigate::relay
