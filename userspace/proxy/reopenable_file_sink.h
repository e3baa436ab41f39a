#pragma once
// An spdlog sink over a file that can be reopened at its path, for log rotation: logrotate
// renames the file, then SIGUSR1 or `snigatectl reopen-logs` calls reopen(), and the next line
// goes to a new file at the configured path while the renamed one keeps every line before it.
// Lines are batched in the process and written whole, many per write(2) on an O_APPEND
// descriptor, by drain() (AccessLog's flusher: every 100 ms, and when a batch is full), before
// a reopen (so each line lands in the file that was open when it was logged) and on close.
// drain() writes outside the sink's lock, so a connection that logs its line while a batch
// goes to disk does not wait for the write(2); batches still reach the file in order (one
// writer at a time), and nothing is lost or written twice across a reopen.
#include <functional>
#include <mutex>
#include <string>

#include <spdlog/sinks/base_sink.h>

#include "net/throttled_warning.h"

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
  // Thread-safe: writes what was logged so far, without holding up those who log meanwhile.
  void drain();
  // Called (under the sink's lock) when a batch is full, so the caller's thread drains it;
  // without one, or far past a batch, the thread that logs writes the batch itself.
  void on_batch_full(std::function<void()> wake);

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  // Under the sink's lock: writes the batch unless a drain() is writing one (which then
  // leaves the rest to the next drain, at most a flush interval later).
  void flush_() override;

 private:
  // Writes `lines` out and clears them; write_mu_ is held (or no other thread is left).
  void write_out(std::string& lines);

  std::string path_;
  int fd_ = -1;
  // Held while a batch goes to the file, before the sink's lock when both are taken.
  std::mutex write_mu_;
  std::string pending_;  // whole lines not written yet (the sink's lock)
  std::string writing_;  // the batch drain() is writing (write_mu_)
  std::function<void()> wake_;
  bool wake_asked_ = false;  // since the last drain
  net::ThrottledWarning failures_;  // drain()'s failed writes
};

}  // namespace snigate::proxy
