#include "relay_sockmap/sockmap_kernel.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include "relay.skel.h"

namespace snigate::relay::sockmap {

namespace {

std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

std::size_t count_keys(int map_fd) {
  std::uint64_t key = 0;
  std::uint64_t next = 0;
  std::size_t n = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(map_fd, prev, &next) == 0) {
    ++n;
    key = next;
    prev = &key;
  }
  return n;
}

int on_wake(void* ctx, void* data, std::size_t size) {
  if (size >= sizeof(snigate_relay_wake))
    static_cast<std::vector<snigate_relay_wake>*>(ctx)->push_back(
        *static_cast<const snigate_relay_wake*>(data));
  return 0;
}

// The inode of a network namespace file, which names the namespace; 0 when unknown.
ino_t netns_inode(int fd) {
  struct stat st{};
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

}  // namespace

std::shared_ptr<Kernel> Kernel::open(const KernelOptions& options, std::string* reason) {
  std::shared_ptr<Kernel> k(new Kernel());
  k->skel_ = relay_bpf__open();
  if (!k->skel_) {
    *reason = errno_text("opening the relay BPF object", errno);
    return nullptr;
  }
  k->skel_->data->inflight_cap = options.inflight_cap;
  if (int err = relay_bpf__load(k->skel_); err != 0) {
    *reason = errno_text("loading the relay BPF programs", -err);
    return nullptr;
  }
  k->targets_fd_ = bpf_map__fd(k->skel_->maps.sg_relay_target);
  k->sources_fd_ = bpf_map__fd(k->skel_->maps.sg_relay_source);
  k->index_fd_ = bpf_map__fd(k->skel_->maps.sg_relay_index);
  // libbpf 1.1 has no bpf_program__attach_sockmap: attach to the map directly.
  if (bpf_prog_attach(bpf_program__fd(k->skel_->progs.sg_relay_verdict), k->sources_fd_,
                      BPF_SK_SKB_STREAM_VERDICT, 0) != 0) {
    *reason = errno_text("attaching the sk_skb verdict to the sockhash", errno);
    return nullptr;
  }
  k->attached_ = true;
  k->iter_link_ = bpf_program__attach_iter(k->skel_->progs.sg_relay_detach, nullptr);
  if (!k->iter_link_) {
    *reason = errno_text("attaching the TCP iterator that pauses a direction", errno);
    return nullptr;
  }
  k->wakes_ = ring_buffer__new(bpf_map__fd(k->skel_->maps.sg_relay_wake), on_wake,
                               &k->pending_, nullptr);
  if (!k->wakes_) {
    *reason = errno_text("opening the relay's ring buffer", errno);
    return nullptr;
  }
  // calloc: the pages of slots never used are never touched.
  k->fds_ = static_cast<int*>(std::calloc(2 * SNIGATE_RELAY_MAX_CONNS, sizeof(int)));
  if (!k->fds_) {
    *reason = "allocating the relay's socket table";
    return nullptr;
  }
  const long page = ::sysconf(_SC_PAGESIZE);
  const std::size_t bytes = sizeof(snigate_relay_conn) * SNIGATE_RELAY_MAX_CONNS;
  k->conns_bytes_ = (bytes + page - 1) / page * page;
  void* m = ::mmap(nullptr, k->conns_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED,
                   bpf_map__fd(k->skel_->maps.sg_relay_conns), 0);
  if (m == MAP_FAILED) {
    *reason = errno_text("mapping the relay conns array", errno);
    return nullptr;
  }
  k->conns_ = static_cast<snigate_relay_conn*>(m);
  k->free_.reserve(SNIGATE_RELAY_MAX_CONNS);
  // Hand out low slots first: a small daemon touches few pages of the array.
  for (std::uint32_t s = SNIGATE_RELAY_MAX_CONNS; s-- > 0;) k->free_.push_back(s);
  return k;
}

void Kernel::detach_loop() {
  while (!stop_.load(std::memory_order_relaxed)) {
    pending_.clear();
    int n = ring_buffer__poll(wakes_, 100);
    if (n < 0 && n != -EINTR) {
      spdlog::error("relay: sockmap ring buffer: {}; paused directions stay in the kernel",
                    std::strerror(-n));
      return;
    }
    if (!pending_.empty()) run_iterator();
  }
}

// One run of the iterator per namespace the waking sockets live in: bpf_iter_tcp walks the
// namespace of the thread that creates the iterator (the daemon's own; a test's sockets
// may sit in namespaces of their own). A socket gone meanwhile is skipped, and its wake-up
// only costs a walk to the end.
void Kernel::run_iterator() {
  struct Namespace {
    int fd = -1;  // -1: the thread's own (not allowed to ask the socket)
    std::uint64_t wakes = 0;
  };
  std::map<ino_t, Namespace> namespaces;
  for (const auto& w : pending_) {
    const int fd = std::atomic_ref<int>(fds_[sock_key(w.slot, w.side)]).load() - 1;
    if (fd < 0) continue;
    int ns = ::ioctl(fd, SIOCGSKNS);
    auto& entry = namespaces[ns < 0 ? 0 : netns_inode(ns)];
    ++entry.wakes;
    if (entry.fd < 0 && ns >= 0)
      entry.fd = ns;
    else if (ns >= 0)
      ::close(ns);
  }
  const auto start = std::chrono::steady_clock::now();
  for (auto& [inode, ns] : namespaces) {
    if (ns.fd >= 0) {
      int self = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
      if (self >= 0 && netns_inode(self) != inode && ::setns(ns.fd, CLONE_NEWNET) != 0)
        spdlog::warn("relay: cannot enter a relayed socket's network namespace: {}",
                     std::strerror(errno));
      if (self >= 0) ::close(self);
      ::close(ns.fd);
    }
    skel_->bss->detach_budget = ns.wakes;
    int it = bpf_iter_create(bpf_link__fd(iter_link_));
    if (it < 0) {
      spdlog::warn("relay: running the TCP iterator: {}", std::strerror(errno));
      continue;
    }
    // The program prints nothing: a read walks the table until the end (0) or until the
    // program stops it, its budget spent (EAGAIN).
    char buf[64];
    while (::read(it, buf, sizeof buf) > 0) {
    }
    ::close(it);
    ++detach_runs_;
  }
  detach_run_ns_ += static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                           start)
          .count());
}

void Kernel::set_inflight_cap(std::uint64_t bytes) {
  std::atomic_ref<__u64>(skel_->data->inflight_cap).store(bytes, std::memory_order_relaxed);
}

std::uint64_t Kernel::inflight_cap() const {
  return std::atomic_ref<__u64>(skel_->data->inflight_cap).load(std::memory_order_relaxed);
}

Kernel::~Kernel() {
  stop_ = true;
  if (detacher_.joinable()) detacher_.join();
  if (wakes_) ring_buffer__free(wakes_);
  if (iter_link_) bpf_link__destroy(iter_link_);
  std::free(fds_);
  if (conns_) ::munmap(conns_, conns_bytes_);
  if (attached_)
    bpf_prog_detach2(bpf_program__fd(skel_->progs.sg_relay_verdict), sources_fd_,
                     BPF_SK_SKB_STREAM_VERDICT);
  if (skel_) relay_bpf__destroy(skel_);
}

std::optional<std::uint32_t> Kernel::acquire() {
  std::lock_guard lock(mutex_);
  // The detacher starts with the first hand-off, not at load: snigated loads the programs
  // before it drops its privileges, which it refuses to do with a second thread running.
  if (!detacher_.joinable()) detacher_ = std::thread([this] { detach_loop(); });
  if (free_.empty()) return std::nullopt;
  std::uint32_t s = free_.back();
  free_.pop_back();
  return s;
}

void Kernel::release(std::uint32_t slot) {
  for (auto& d : conns_[slot].dir) {
    repeated_ += std::atomic_ref<__u64>(d.repeated).load(std::memory_order_relaxed);
    detaches_ += std::atomic_ref<__u64>(d.detaches).load(std::memory_order_relaxed);
  }
  std::memset(&conns_[slot], 0, sizeof(snigate_relay_conn));
  std::lock_guard lock(mutex_);
  free_.push_back(slot);
}

std::uint64_t Kernel::index(int fd, std::uint32_t slot, std::uint32_t side) {
  std::uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) return 0;
  snigate_relay_sock value{slot, side};
  if (bpf_map_update_elem(index_fd_, &cookie, &value, BPF_ANY) != 0) return 0;
  return cookie;
}

void Kernel::unindex(std::uint64_t cookie) { bpf_map_delete_elem(index_fd_, &cookie); }

bool Kernel::insert(int fd, std::uint32_t slot, std::uint32_t side, std::string* error) {
  std::uint64_t key = sock_key(slot, side);
  std::uint32_t value = static_cast<std::uint32_t>(fd);
  if (bpf_map_update_elem(targets_fd_, &key, &value, BPF_NOEXIST) != 0) {
    *error = errno_text("sockhash insert", errno);
    return false;
  }
  std::atomic_ref<int>(fds_[key]).store(fd + 1);
  return true;
}

bool Kernel::attach_source(int fd, std::uint32_t slot, std::uint32_t side) {
  std::uint64_t key = sock_key(slot, side);
  std::uint32_t value = static_cast<std::uint32_t>(fd);
  return bpf_map_update_elem(sources_fd_, &key, &value, BPF_NOEXIST) == 0;
}

void Kernel::remove(std::uint32_t slot, std::uint32_t side) {
  std::uint64_t key = sock_key(slot, side);
  bpf_map_delete_elem(sources_fd_, &key);
  bpf_map_delete_elem(targets_fd_, &key);
  std::atomic_ref<int>(fds_[key]).store(0);
}

const char* broken_reason(std::uint32_t why) {
  switch (why) {
    case SNIGATE_RELAY_BROKEN_GAP: return "the kernel skipped bytes before the verdict saw them";
    case SNIGATE_RELAY_BROKEN_TRIM: return "a repeated head could not be cut";
    case SNIGATE_RELAY_BROKEN_SEQ: return "TCP sequence unreadable";
    case SNIGATE_RELAY_BROKEN_PEER: return "the peer left the relay";
    default: return "unknown reason";
  }
}

std::size_t Kernel::sockhash_entries() const {
  return count_keys(targets_fd_) + count_keys(sources_fd_);
}
std::size_t Kernel::index_entries() const { return count_keys(index_fd_); }

}  // namespace snigate::relay::sockmap
