#pragma once
// Zero-copy in userspace terms: splice(2) moves pages socket -> pipe -> socket inside the
// kernel, one pipe per direction. Readiness comes from the event loop (net/ready_wait.h).
#include <cstddef>

#include "relay/relay.h"

namespace snigate::relay {

class SpliceRelay final : public Relay {
 public:
  Mode mode() const override { return Mode::Splice; }
  bool uses_pipes() const override { return true; }
  void start(tcp::socket& client, tcp::socket& upstream, const Options& options,
             Counters& counters, Done done) override;
  // Whether this kernel has splice(2) for sockets and pipes; the reason when it has not.
  static bool available(std::string* reason);
};

}  // namespace snigate::relay
