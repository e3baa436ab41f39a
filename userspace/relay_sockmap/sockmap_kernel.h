#pragma once
// The process-wide half of the sockmap relay: the loaded verdict program attached to the
// `sources` sockhash, the connection slots (an mmap of the conns array), the map operations
// one connection needs, and the detacher: a thread that waits on the programs' ring buffer
// and runs the TCP iterator that takes a paused source out of `sources` under its socket
// lock. Layouts and the pause: include/snigate/bpf/relay_abi.h.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "snigate/bpf/relay_abi.h"

struct relay_bpf;
struct bpf_link;
struct ring_buffer;

namespace snigate::relay::sockmap {

struct KernelOptions {
  // Bytes a direction may have on the way to the peer's receiver before the kernel hands it
  // back to userspace flow control (relay_abi.h).
  std::uint64_t inflight_cap = SNIGATE_RELAY_QUEUE_LIMIT_DEFAULT;
};

class Kernel {
 public:
  // Loads and attaches the programs; nullptr and the reason when this process or kernel
  // cannot (no CAP_BPF, no BTF, verifier refusal).
  static std::shared_ptr<Kernel> open(const KernelOptions& options, std::string* reason);
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  // A zeroed connection slot, or nullopt when all SNIGATE_RELAY_MAX_CONNS are in use.
  std::optional<std::uint32_t> acquire();
  // The program reads it on every skb: a change applies to live connections too.
  void set_inflight_cap(std::uint64_t bytes);
  std::uint64_t inflight_cap() const;
  // Zeroes the slot for reuse; its sockets must be out of the maps already.
  void release(std::uint32_t slot);
  // Live view of a slot, shared with the program (read fields with atomic loads).
  snigate_relay_conn& conn(std::uint32_t slot) { return conns_[slot]; }

  // Index entry for socket `fd` (by SO_COOKIE); returns the cookie, 0 and errno on failure.
  std::uint64_t index(int fd, std::uint32_t slot, std::uint32_t side);
  void unindex(std::uint64_t cookie);
  // Puts `fd` in `targets` as (slot, side): the other direction may redirect to it.
  bool insert(int fd, std::uint32_t slot, std::uint32_t side, std::string* error);
  // Puts `fd` in `sources`: from then on the verdict sees its skbs. Fails (errno) for a
  // socket that is no longer ESTABLISHED (its FIN came in).
  bool attach_source(int fd, std::uint32_t slot, std::uint32_t side);
  // Out of both sockhashes (sources first, so the verdict never finds its peer missing).
  void remove(std::uint32_t slot, std::uint32_t side);

  // Over every connection released so far: bytes TCP handed to the verdict a second time,
  // which the program cut (relay_abi.h), and pauses (a source taken out of `sources`).
  std::uint64_t repeated_bytes() const { return repeated_.load(std::memory_order_relaxed); }
  std::uint64_t detaches() const { return detaches_.load(std::memory_order_relaxed); }
  // Runs of the TCP iterator so far, and the time they took (the price of a pause).
  std::uint64_t detach_runs() const { return detach_runs_.load(std::memory_order_relaxed); }
  std::uint64_t detach_run_ns() const { return detach_run_ns_.load(std::memory_order_relaxed); }

  // For tests: entries in the sockhash and the index.
  std::size_t sockhash_entries() const;
  std::size_t index_entries() const;

 private:
  Kernel() = default;
  // The detacher thread: wake-ups from the ring buffer, then one iterator run per network
  // namespace the waking sockets live in.
  void detach_loop();
  void run_iterator();

  relay_bpf* skel_ = nullptr;
  int targets_fd_ = -1;
  int sources_fd_ = -1;
  bpf_link* iter_link_ = nullptr;
  ring_buffer* wakes_ = nullptr;
  std::vector<snigate_relay_wake> pending_;  // detacher thread only
  // fd + 1 of each socket in `targets`, by sock_key (0: none): which namespace to walk.
  int* fds_ = nullptr;
  std::atomic<bool> stop_{false};
  std::thread detacher_;  // started by the first acquire(), under mutex_
  int index_fd_ = -1;
  snigate_relay_conn* conns_ = nullptr;
  std::size_t conns_bytes_ = 0;
  bool attached_ = false;
  std::mutex mutex_;
  std::vector<std::uint32_t> free_;
  std::atomic<std::uint64_t> repeated_{0};
  std::atomic<std::uint64_t> detaches_{0};
  std::atomic<std::uint64_t> detach_runs_{0};
  std::atomic<std::uint64_t> detach_run_ns_{0};
};

// The words for a SNIGATE_RELAY_BROKEN_* reason, for the access log.
const char* broken_reason(std::uint32_t why);

inline std::uint64_t sock_key(std::uint32_t slot, std::uint32_t side) {
  return (static_cast<std::uint64_t>(slot) << 1) | (side & 1);
}

}  // namespace snigate::relay::sockmap
