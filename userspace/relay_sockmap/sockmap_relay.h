#pragma once
// Kernel-side relay: both sockets go into a sockhash and the sk_skb verdict program moves the
// payload; userspace only watches each side for FIN, RST and handed-back bytes, and closes
// each direction once the kernel's accounting shows every redirected byte reached the peer.
// Connections it cannot hand off (no free slot, a side already half-closed) run on the
// fallback relay instead.
#include <memory>
#include <string>

#include "relay/relay.h"
#include "relay_sockmap/sockmap_kernel.h"

namespace snigate::relay {

class SockmapRelay final : public Relay {
 public:
  // The process-wide instance (programs load and attach once; a later call applies its
  // options to the live one); nullptr and the reason when this process or kernel cannot run
  // it. `fallback` relays what cannot be handed off.
  static std::shared_ptr<SockmapRelay> create(std::shared_ptr<Relay> fallback,
                                              std::string* reason,
                                              const sockmap::KernelOptions& options = {});

  Mode mode() const override { return Mode::Sockmap; }
  boost::asio::awaitable<Result> run(tcp::socket& client, tcp::socket& upstream,
                                     const Options& options, Counters& counters) override;

  // For tests: map entries still held, and the repeated bytes the program has cut.
  std::size_t sockhash_entries() const { return kernel_->sockhash_entries(); }
  std::size_t index_entries() const { return kernel_->index_entries(); }
  std::uint64_t repeated_bytes() const { return kernel_->repeated_bytes(); }

  SockmapRelay(std::shared_ptr<sockmap::Kernel> kernel, std::shared_ptr<Relay> fallback)
      : kernel_(std::move(kernel)), fallback_(std::move(fallback)) {}

 private:
  std::shared_ptr<sockmap::Kernel> kernel_;
  std::shared_ptr<Relay> fallback_;
};

}  // namespace snigate::relay
