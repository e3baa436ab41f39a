#pragma once
// An spdlog sink over a file that can be reopened at its path, for log rotation: logrotate
// renames the file, then SIGUSR1 or `snigatectl reopen-logs` calls reopen(), and the next line
// goes to a new file at the configured path while the renamed one keeps every line before it.
// Lines are batched in the process and written whole, many per write(2) on an O_APPEND
// descriptor, when the batch is full, on flush() (AccessLog flushes every 100 ms), before a
// reopen (so each line lands in the file that was open when it was logged) and on close.
// All under the sink's lock: nothing is lost or written twice across a reopen.
#include <mutex>
#include <string>

#include <spdlog/sinks/base_sink.h>

namespace snigate::proxy {

class ReopenableFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // Appends to `path`, creating it (and its directory) when missing; throws with advice.
  explicit ReopenableFileSink(std::string path);
  ~ReopenableFileSink() override;
  ReopenableFileSink(const ReopenableFileSink&) = delete;
  ReopenableFileSink& operator=(const ReopenableFileSink&) = delete;

  // Thread-safe. Opens `path` afresh; a file created here gets the mode of the one it
  // replaces (not the umask's), so a rotation keeps the operator's permissions. On failure
  // the old file stays in use and the reason is returned; "" on success.
  std::string reopen();
  const std::string& path() const { return path_; }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override { write_pending(); }

 private:
  // Writes the batch out; the sink's lock is held.
  void write_pending();

  std::string path_;
  int fd_ = -1;
  std::string pending_;  // whole lines not written yet
};

}  // namespace snigate::proxy
