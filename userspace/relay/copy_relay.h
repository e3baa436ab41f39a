#pragma once
// The portable relay: read into a bounded userspace buffer, write it out, per direction.
#include "relay/relay.h"

namespace snigate::relay {

class CopyRelay final : public Relay {
 public:
  Mode mode() const override { return Mode::Copy; }
  void start(tcp::socket& client, tcp::socket& upstream, const Options& options,
             Counters& counters, Done done) override;
};

}  // namespace snigate::relay
