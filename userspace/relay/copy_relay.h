#pragma once
// The portable relay: read into a bounded userspace buffer, write it out, per direction.
#include "relay/relay.h"
#include "relay/then.h"

namespace snigate::relay {

class CopyRelay final : public HandingRelay {
 public:
  Mode mode() const override { return Mode::Copy; }
  void start(tcp::socket& client, tcp::socket& upstream, const Options& options,
             Counters& counters, Done done) override;
  void start_then(tcp::socket& client, tcp::socket& upstream, const Options& options,
                  Counters& counters, Done done, const HandoffProof& proof,
                  Takeover& then) override;
};

}  // namespace snigate::relay
