#pragma once
// The ban vm-tests' scratch pin directories on bpffs: /sys/fs/bpf/sg-ban-test-PID, one per
// test process, removed by the test and, if the process was killed, by the next one.
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace snigate::vmtest {

inline bool on_bpffs(const char* path) {
  struct statfs fs {};
  return ::statfs(path, &fs) == 0 && fs.f_type == 0xcafe4a11;  // BPF_FS_MAGIC
}

// Pin directories named sg-ban-test-PID whose process is gone: a run that was killed.
inline void remove_stale_pins() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/sys/fs/bpf", ec)) {
    const std::string name = entry.path().filename();
    if (name.rfind("sg-ban-test-", 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + 12, nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      std::filesystem::remove_all(entry.path(), ec);
  }
}

inline std::string scratch_pin_root() {
  return "/sys/fs/bpf/sg-ban-test-" + std::to_string(::getpid());
}

}  // namespace snigate::vmtest
