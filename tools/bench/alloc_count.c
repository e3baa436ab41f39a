// Counts a process's heap allocations for the bench (LD_PRELOAD): every malloc, calloc,
// realloc, aligned_alloc, posix_memalign and memalign (C++'s operator new calls malloc) adds
// one to a counter kept in the file SNIGATE_ALLOC_COUNT_FILE names, mapped shared, so the
// bench reads it from outside (8 bytes, native-endian) before and after a run. glibc's
// __libc_* entry points do the allocating, so no dlsym bootstrap is needed.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

extern void* __libc_malloc(size_t size);
extern void* __libc_calloc(size_t n, size_t size);
extern void* __libc_realloc(void* p, size_t size);
extern void* __libc_memalign(size_t alignment, size_t size);

static uint64_t* counter;

__attribute__((constructor)) static void open_counter(void) {
  const char* path = getenv("SNIGATE_ALLOC_COUNT_FILE");
  if (!path) return;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (ftruncate(fd, sizeof *counter) == 0) {
    void* m = mmap(NULL, sizeof *counter, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED) counter = m;
  }
  close(fd);
}

static void count(void) {
  if (counter) __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

void* malloc(size_t size) {
  count();
  return __libc_malloc(size);
}

void* calloc(size_t n, size_t size) {
  count();
  return __libc_calloc(n, size);
}

void* realloc(void* p, size_t size) {
  count();
  return __libc_realloc(p, size);
}

void* memalign(size_t alignment, size_t size) {
  count();
  return __libc_memalign(alignment, size);
}

void* aligned_alloc(size_t alignment, size_t size) {
  count();
  return __libc_memalign(alignment, size);
}

int posix_memalign(void** out, size_t alignment, size_t size) {
  if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0) return 22;  // EINVAL
  count();
  void* p = __libc_memalign(alignment, size);
  if (!p) return 12;  // ENOMEM
  *out = p;
  return 0;
}
