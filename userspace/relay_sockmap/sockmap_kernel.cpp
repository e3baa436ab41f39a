#include "relay_sockmap/sockmap_kernel.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

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
  k->socks_fd_ = bpf_map__fd(k->skel_->maps.sg_relay_socks);
  k->index_fd_ = bpf_map__fd(k->skel_->maps.sg_relay_index);
  // libbpf 1.1 has no bpf_program__attach_sockmap: attach to the map directly.
  if (bpf_prog_attach(bpf_program__fd(k->skel_->progs.sg_relay_verdict), k->socks_fd_,
                      BPF_SK_SKB_STREAM_VERDICT, 0) != 0) {
    *reason = errno_text("attaching the sk_skb verdict to the sockhash", errno);
    return nullptr;
  }
  k->attached_ = true;
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

void Kernel::set_inflight_cap(std::uint64_t bytes) {
  std::atomic_ref<__u64>(skel_->data->inflight_cap).store(bytes, std::memory_order_relaxed);
}

Kernel::~Kernel() {
  if (conns_) ::munmap(conns_, conns_bytes_);
  if (attached_)
    bpf_prog_detach2(bpf_program__fd(skel_->progs.sg_relay_verdict), socks_fd_,
                     BPF_SK_SKB_STREAM_VERDICT);
  if (skel_) relay_bpf__destroy(skel_);
}

std::optional<std::uint32_t> Kernel::acquire() {
  std::lock_guard lock(mutex_);
  if (free_.empty()) return std::nullopt;
  std::uint32_t s = free_.back();
  free_.pop_back();
  return s;
}

void Kernel::release(std::uint32_t slot) {
  for (auto& d : conns_[slot].dir)
    repeated_ += std::atomic_ref<__u64>(d.repeated).load(std::memory_order_relaxed);
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
  if (bpf_map_update_elem(socks_fd_, &key, &value, BPF_NOEXIST) == 0) return true;
  *error = errno_text("sockhash insert", errno);
  return false;
}

void Kernel::remove(std::uint32_t slot, std::uint32_t side) {
  std::uint64_t key = sock_key(slot, side);
  bpf_map_delete_elem(socks_fd_, &key);
}

const char* broken_reason(std::uint32_t why) {
  switch (why) {
    case SNIGATE_RELAY_BROKEN_GAP: return "the kernel skipped bytes before the verdict saw them";
    case SNIGATE_RELAY_BROKEN_TRIM: return "a repeated head could not be cut";
    case SNIGATE_RELAY_BROKEN_SEQ: return "TCP sequence unreadable";
    default: return "unknown reason";
  }
}

std::size_t Kernel::sockhash_entries() const { return count_keys(socks_fd_); }
std::size_t Kernel::index_entries() const { return count_keys(index_fd_); }

}  // namespace snigate::relay::sockmap
