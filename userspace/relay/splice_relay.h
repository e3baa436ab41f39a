#pragma once
// Zero-copy in userspace terms: splice(2) moves pages socket -> pipe -> socket inside the
// kernel, one pipe per direction. Readiness comes from the event loop (net/ready_wait.h).
#include <cstddef>

#include "relay/relay.h"

namespace snigate::relay {

class SpliceRelay final : public Relay {
 public:
  // What relay = auto passes as copy_first: connections that move less each way (a hello
  // and its answer, a short request) never need a pipe; longer streams go on by splice.
  static constexpr std::size_t kAutoCopyFirst = 64 * 1024;

  // Each direction moves its first `copy_first` bytes by copy, the rest by splice.
  explicit SpliceRelay(std::size_t copy_first = 0);
  Mode mode() const override { return Mode::Splice; }
  void start(tcp::socket& client, tcp::socket& upstream, const Options& options,
             Counters& counters, Done done) override;
  // Whether this kernel has splice(2) for sockets and pipes; the reason when it has not.
  static bool available(std::string* reason);

 private:
  std::size_t copy_first_;
};

}  // namespace snigate::relay
