#include "kernel/relay_choice.h"

#include <utility>

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

// The sockmap relay over `fallback`, handing connections off by `proof`, where the kernel has
// what its programs need and they load and attach here; else nullptr and `why_not`.
std::shared_ptr<relay::Relay> sockmap_relay(
    [[maybe_unused]] std::shared_ptr<relay::Relay> fallback,
    [[maybe_unused]] const relay::HandoffProof& proof,
    [[maybe_unused]] const SockmapSettings& sockmap, const KernelFeatures& k,
    std::string& why_not) {
  why_not = KernelFeatures::missing(k.sockmap_relay);
#ifdef SNIGATE_RELAY_SOCKMAP
  if (why_not.empty())
    return relay::SockmapRelay::create(std::move(fallback), &why_not,
                                       {.inflight_cap = sockmap.queue_limit}, proof);
#else
  why_not = "built without BPF (SNIGATE_BPF=OFF)";
#endif
  return nullptr;
}

// Auto: copy, and the kernel's redirect for the connections that prove interactive.
// Copy, not splice: with buffers that fit a core's L1 data cache (relay.h) it cost the whole
// machine less CPU per GiB than splice(2) on one connection's upload in every run, likely
// because spliced pages stay referenced until the far end has read them, so the sender cannot
// reuse its pages; and copy's TCP_INQ hint saves a short connection a read. Splice led at
// eight connections, and in one run also on one connection's two-way echo, where copy then
// trailed nginx (README, `relay = "auto"`): choosing copy or a pipe read by read would take
// the better of the two, and is not built. Not sockmap for bulk: copy and splice led it in the bench
// at one connection, upload and echo alike (each pause walks the kernel's TCP hash table and
// waits for the daemon to put the source back). But a connection of small requests and answers
// costs the daemon a wake-up and two system calls per message under copy, and the kernel's
// redirect answers it sooner (the bench's latency row); once handed off it costs, idle, what a
// copied one does (relay_sockmap/handoff.h). So auto hands a connection to the kernel on the
// small-reads proof alone, never on bytes moved.
RelayChoice auto_relay(const SockmapSettings& sockmap, const KernelFeatures& k) {
  auto copy = std::make_shared<relay::CopyRelay>();
  std::string why_not;
  if (auto relay = sockmap_relay(copy,
                                 {.bytes = relay::HandoffProof::kNever,
                                  .small_reads = relay::HandoffProof::kDefaultSmallReads},
                                 sockmap, k, why_not))
    return {relay, "copy; connections that prove interactive go to the kernel (sockmap)"};
  return {copy, "copy: less CPU per GiB than splice(2) on one connection; sockmap unavailable "
                "for interactive connections: " + why_not};
}

}  // namespace

RelayChoice choose_relay(Mode requested, const SockmapSettings& sockmap,
                         const KernelFeatures& k) {
  if (requested == Mode::Copy)
    return {std::make_shared<relay::CopyRelay>(), "configured relay = copy"};
  if (requested == Mode::Splice) return userspace_relay(requested, k);
  if (requested == Mode::Auto) return auto_relay(sockmap, k);
  // Sockmap: connections it cannot hand off run on the userspace relay picked the same way.
  RelayChoice fallback = userspace_relay(requested, k);
  std::string why_not;
  if (auto relay = sockmap_relay(fallback.relay,
                                 {.bytes = sockmap.handoff_after,
                                  .small_reads = relay::HandoffProof::kDefaultSmallReads},
                                 sockmap, k, why_not))
    return {relay, "configured relay = sockmap"};
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
