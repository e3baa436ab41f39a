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

// The sockmap relay over `fallback`, handing connections off by `proof` after `first` (copy
// when null) relayed them, where the kernel has what its programs need and they load and
// attach here; else nullptr and `why_not`.
std::shared_ptr<relay::Relay> sockmap_relay(
    [[maybe_unused]] std::shared_ptr<relay::Relay> fallback,
    [[maybe_unused]] const relay::HandoffProof& proof,
    [[maybe_unused]] const SockmapSettings& sockmap, const KernelFeatures& k,
    std::string& why_not, [[maybe_unused]] std::shared_ptr<relay::HandingRelay> first = nullptr) {
  why_not = KernelFeatures::missing(k.sockmap_relay);
#ifdef SNIGATE_RELAY_SOCKMAP
  if (why_not.empty())
    return relay::SockmapRelay::create(std::move(fallback), &why_not,
                                       {.inflight_cap = sockmap.queue_limit}, proof,
                                       std::move(first));
#else
  why_not = "built without BPF (SNIGATE_BPF=OFF)";
#endif
  return nullptr;
}

// Auto: copy, splice(2) for the bursts that fill the buffer while others do too (relay/
// splice_relay.h, Bursts::Bulk), and the kernel's redirect for the connections that prove
// interactive. Neither copy nor splice led every bench row: copy cost less CPU per GiB on one
// connection's upload and keeps its TCP_INQ hint, which saves a short connection or a request a
// read; splice led at eight connections and on two-way echo, where copy trailed nginx (README,
// `relay = "auto"`). Choosing per burst takes each where it leads. Not sockmap for bulk: copy and
// splice led it in the bench at one connection, upload and echo alike (each pause walks the
// kernel's TCP hash table and waits for the daemon to put the source back). But a connection of
// small requests and answers costs the daemon a wake-up and two system calls per message in
// userspace, and the kernel's redirect answers it sooner (the bench's latency row); once handed
// off it costs, idle, what a copied one does (relay_sockmap/handoff.h). So auto hands a connection
// to the kernel on the small-reads proof alone, never on bytes moved.
RelayChoice auto_relay(const SockmapSettings& sockmap, const KernelFeatures& k) {
  std::shared_ptr<relay::HandingRelay> userspace;
  std::string how;
  if (k.splice) {
    userspace = std::make_shared<relay::SpliceRelay>(relay::SpliceRelay::Bursts::Bulk);
    how = "copy, splice(2) for bulk bursts";
  } else {
    userspace = std::make_shared<relay::CopyRelay>();
    how = "copy (" + k.splice_detail + ")";
  }
  std::string why_not;
  if (auto relay = sockmap_relay(userspace,
                                 {.bytes = relay::HandoffProof::kNever,
                                  .small_reads = relay::HandoffProof::kDefaultSmallReads},
                                 sockmap, k, why_not, userspace))
    return {relay, how + "; connections that prove interactive go to the kernel (sockmap)"};
  return {userspace, how + "; sockmap unavailable for interactive connections: " + why_not};
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
