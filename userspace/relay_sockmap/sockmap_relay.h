#pragma once
// Kernel-side relay: both sockets go into sockhashes and the sk_skb verdict program moves the
// payload; userspace only watches each side for FIN, RST and the end of a pause, and closes
// each direction once the kernel's accounting shows every redirected byte reached the peer.
// Connections it cannot hand off (no free slot, a side already half-closed) run on the
// fallback relay instead. Layouts and the program's rules: include/snigate/bpf/relay_abi.h.
//
// The life cycle of one connection (SockmapRelay::start, take_over and prepare, then
// handoff.cpp), each step with the invariant it keeps:
//  0. relay in userspace (`first`, HandingRelay::start_then: copy, or auto's copy that splices
//     bulk) until the connection has met its proof (relay/then.h: bytes moved, or small
//     reads in a row): a short or idle connection never
//     pays for a hand-off, nor holds its coroutines and timers. The copy stops once both
//     directions have written all they read, with no wait left on either socket; what
//     arrived meanwhile waits in the receive queues, for step 2. Until then the connection
//     is relay=copy (or splice) in the log.
//  1. acquire a slot of the conns array, zeroed. None free: the fallback relays it.
//  2. move what each socket holds unread to its peer in userspace (unread_move.h), until a
//     read finds the receive queue empty: from then on the queue holds only whole skbs nobody
//     has read, so the verdict never sees an skb the session read part of. A sender that
//     never lets its queue empty, or a reset: the fallback relays it. Nothing moved for the
//     idle timeout: the connection ends there, with RST both ways.
//  3. peer_base = bytes each peer's TCP has taken so far; both directions RUNNING. The
//     program's flow-control count starts exactly where userspace's writes stop. Each
//     socket's receive buffer is clamped: a paused direction waits there.
//  4. index both sockets by cookie (slot, side), before either enters a sockhash, so the
//     first skb the verdict sees finds its slot.
//  5. insert upstream, then client, into `targets`. A side the kernel refuses (no longer
//     ESTABLISHED): the fallback relays the connection (no program has run on either).
//  6. insert both into `sources` (the verdict), kick both verdicts: bytes queued before the
//     insertion are verdicted without waiting for more to arrive. A source refused there
//     (its FIN came in) starts DETACHED, and its watcher copies the rest.
//  7. SO_LINGER {1, 0} on both: whoever closes them mid-relay (a ban, a stop, an idle
//     timeout, a broken direction) resets both peers, because bytes held in the psocks are not
//     TCP's unread data and a FIN would leave a peer writing into a zero window.
//  8. watch (handoff.h): per direction, end a pause (back into `sources` once the peer has
//     room, or copy the rest after a FIN) and pass the FIN on once every redirected byte is
//     in the peer's send queue (drained), never before. The pause itself: relay_abi.h.
//  9. on a clean end, linger back off: every byte is queued, the caller's close delivers them.
// 10. remove both sockets from the sockhashes, unindex, release the slot: nothing is
//     redirected into a socket being torn down, and a reused slot starts zeroed.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "relay/relay.h"
#include "relay/then.h"
#include "relay_sockmap/sockmap_kernel.h"

namespace snigate::relay {

class SockmapRelay final : public Relay, private Takeover {
 public:
  // A relay on the process's programs (they load and attach once, on the first call; a
  // later call applies `options` to them, for every relay), or nullptr and the reason when
  // this process or kernel cannot run them. `fallback` relays what cannot be handed off;
  // `proof`: when a connection relayed first by `first` (step 0; copy when null) is handed
  // off, by default at once.
  static std::shared_ptr<SockmapRelay> create(std::shared_ptr<Relay> fallback,
                                              std::string* reason,
                                              const sockmap::KernelOptions& options = {},
                                              const HandoffProof& proof = {},
                                              std::shared_ptr<HandingRelay> first = nullptr);

  // What [daemon] sockmap_handoff_after defaults to: a connection that has moved 64 KiB
  // either way has proven long enough to pay for a hand-off (its slot, the programs' work).
  static constexpr std::uint64_t kDefaultHandoffAfter = 64 * 1024;

  Mode mode() const override { return Mode::Sockmap; }
  bool uses_pipes() const override { return fallback_->uses_pipes(); }
  // Step 0, or at once when the proof asks for no bytes, then the rest.
  void start(tcp::socket& client, tcp::socket& upstream, const Options& options,
             Counters& counters, Done done) override;

  // For tests: map entries still held, the repeated bytes the program has cut, and the pauses.
  std::size_t sockhash_entries() const { return kernel_->sockhash_entries(); }
  std::size_t index_entries() const { return kernel_->index_entries(); }
  std::uint64_t repeated_bytes() const { return kernel_->repeated_bytes(); }
  const sockmap::Kernel& kernel() const { return *kernel_; }

  SockmapRelay(std::shared_ptr<sockmap::Kernel> kernel, std::shared_ptr<Relay> fallback,
               const HandoffProof& proof, std::shared_ptr<HandingRelay> first)
      : kernel_(std::move(kernel)),
        fallback_(std::move(fallback)),
        first_(std::move(first)),
        proof_(proof) {}

 private:
  // What steps 1 to 7 left a connection to: nothing (closed meanwhile, or by step 2's idle
  // timeout), the fallback, or the watch of step 8 over `slot`, whose sockets are indexed
  // under `cookies`.
  struct Prepared {
    enum class Next { Aborted, IdleTimeout, Fallback, Watch } next = Next::Aborted;
    std::uint32_t slot = 0;
    std::uint64_t cookies[2] = {0, 0};
  };

  // Steps 1 to 10, once step 0's copy has stopped. Only steps 1 to 7 run as a coroutine: a
  // handed-off connection holds no frame while the kernel relays it.
  void take_over(tcp::socket& client, tcp::socket& upstream, const Options& options,
                 Counters& counters, Done done) override;
  boost::asio::awaitable<Prepared> prepare(tcp::socket& client, tcp::socket& upstream,
                                           const Options& options, Counters& counters);
  // Step 10: out of the maps and the index, the slot released.
  void forget(const Prepared& p);

  std::shared_ptr<sockmap::Kernel> kernel_;
  std::shared_ptr<Relay> fallback_;
  std::shared_ptr<HandingRelay> first_;
  const HandoffProof proof_;
};

}  // namespace snigate::relay
