#include "kernel/relay_choice.h"

#include <spdlog/spdlog.h>

#include "relay/copy_relay.h"
#include "relay/splice_relay.h"
#ifdef SNIGATE_RELAY_SOCKMAP
#include "relay_sockmap/sockmap_relay.h"
#endif

namespace snigate::kernel {

using relay::Mode;

namespace {

// Splice when this kernel has it, else copy: the fallback of sockmap, and of splice itself.
RelayChoice userspace_relay(Mode requested, const KernelFeatures& k) {
  if (k.splice)
    return {std::make_shared<relay::SpliceRelay>(),
            (requested == Mode::Splice ? "configured relay = splice" : "splice(2) available")};
  return {std::make_shared<relay::CopyRelay>(), k.splice_detail + "; falling back to copy"};
}

}  // namespace

RelayChoice choose_relay(Mode requested, [[maybe_unused]] const SockmapSettings& sockmap,
                         const KernelFeatures& k) {
  if (requested == Mode::Copy)
    return {std::make_shared<relay::CopyRelay>(), "configured relay = copy"};
  if (requested == Mode::Splice) return userspace_relay(requested, k);
  // Auto copies, and gives the kernel only the connections whose small reads prove them
  // interactive: each such read is a wake-up the kernel's redirect spares, and it answers in
  // half the time (README, `relay = "auto"`). Copy, not splice, for the rest: with buffers that
  // fit a core's L1 data cache (relay.h) it cost the whole machine less CPU per GiB than
  // splice(2) and the kernel relay on one connection, upload and echo alike, and beat nginx and
  // HAProxy in every row; likely because spliced pages stay referenced until the far end has
  // read them, so the sender cannot reuse its pages. Splice led at eight connections in one run
  // of two. No bytes threshold: a bulk stream stays on copy.
  const bool automatic = requested == Mode::Auto;
  RelayChoice fallback = automatic ? RelayChoice{std::make_shared<relay::CopyRelay>(),
                                                 "copy: less CPU per GiB than splice(2)"}
                                   : userspace_relay(requested, k);
  // Sockmap: the kernel relay when the kernel has what its programs need and they load and
  // attach here. Connections it does not take run on the userspace relay picked above.
  std::string why_not = KernelFeatures::missing(k.sockmap_relay);
#ifdef SNIGATE_RELAY_SOCKMAP
  if (why_not.empty()) {
    const relay::HandoffProof proof{
        .bytes = automatic ? relay::HandoffProof::kNever : sockmap.handoff_after,
        .small_reads = relay::HandoffProof::kDefaultSmallReads};
    if (auto relay = relay::SockmapRelay::create(fallback.relay, &why_not,
                                                 {.inflight_cap = sockmap.queue_limit}, proof))
      return {relay, automatic ? "copy first, the kernel for connections that prove "
                                 "interactive (" +
                                     std::to_string(proof.small_reads) + " reads in a row under " +
                                     std::to_string(relay::HandoffProof::kSmallRead) + " B)"
                               : "configured relay = sockmap"};
  }
#else
  why_not = "built without BPF (SNIGATE_BPF=OFF)";
#endif
  fallback.reason = "sockmap unavailable: " + why_not + "; " + fallback.reason;
  return fallback;
}

std::string describe(const RelayChoice& choice, Mode requested) {
  return "relay: " + std::string(relay::to_string(choice.relay->mode())) + " (requested " +
         std::string(relay::to_string(requested)) + ": " + choice.reason + ")";
}

RelayChoice select_relay(Mode requested, const SockmapSettings& sockmap,
                         const KernelFeatures& k) {
  RelayChoice s = choose_relay(requested, sockmap, k);
  spdlog::info("{}", describe(s, requested));
  return s;
}

}  // namespace snigate::kernel
