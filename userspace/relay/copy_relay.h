#pragma once
// The portable relay: read into a bounded userspace buffer, write it out, per direction.
#include <cstdint>

#include "relay/relay.h"

namespace snigate::relay {

class CopyRelay final : public Relay {
 public:
  Mode mode() const override { return Mode::Copy; }
  void start(tcp::socket& client, tcp::socket& upstream, const Options& options,
             Counters& counters, Done done) override;
  // start(), until the connection has proven long: once either direction has moved `after`
  // bytes (`counters`, so what the session sent first counts) and both have written all they
  // read, the copy stops (no wait of its own left on either socket) and calls then.start()
  // with the same arguments. `then` outlives the connection.
  static void start_then(tcp::socket& client, tcp::socket& upstream, const Options& options,
                         Counters& counters, Done done, std::uint64_t after, Relay& then);
};

}  // namespace snigate::relay
