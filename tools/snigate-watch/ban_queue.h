#pragma once
// snigate-watch's outbox: every ban a jail makes is written to disk before anything else,
// then sent to the edge in order; while the edge is unreachable the sender retries with
// exponential backoff, and a restart resumes from the file, so no ban is lost. A ban the edge
// refuses for the channel's sake (wrong token, clock skew: RemoteReply::channel) is held,
// with the reason, and queued again as soon as the edge accepts a ban from us.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "bans/ban.h"
#include "control/remote_client.h"

namespace snigate::watch_tool {

struct BanQueueOptions {
  std::string file;  // JSON lines, one pending ban each; empty: memory only
  std::chrono::milliseconds backoff_min{1000};
  std::chrono::milliseconds backoff_max{60000};
  std::size_t max_held = 10000;  // channel-refused bans kept; the oldest go beyond this
};

class BanQueue {
 public:
  using Send = std::function<control::RemoteReply(const bans::BanRequest&)>;

  // Loads what the file still holds and starts the sender thread.
  BanQueue(BanQueueOptions options, Send send);
  ~BanQueue();  // stops the sender; what is unsent stays in the file
  BanQueue(const BanQueue&) = delete;
  BanQueue& operator=(const BanQueue&) = delete;

  // Queues (with an idempotency id, when the request has none) and writes the file. Returns false when the disk refused (the ban stays queued in
  // memory; the next write retries).
  bool push(const bans::BanRequest& request);
  std::size_t pending() const;
  // Bans the edge refused for the channel's sake, waiting for it to accept us again.
  std::size_t held() const;
  std::string held_reason() const;  // the latest refusal, "" when none is held
  // Waits until the queue is empty or `limit` passes; true when empty.
  bool drain(std::chrono::milliseconds limit);

 private:
  void run();
  bool persist_locked();  // rewrites the file from queue_ (written aside, renamed)

  BanQueueOptions options_;
  Send send_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<bans::BanRequest> queue_;
  std::deque<bans::BanRequest> held_;  // in the file too, each line marked "held"
  std::string held_reason_;
  bool stopping_ = false;
  std::thread sender_;
};

// One ban as a JSON line, and back (nullopt for a line that is not one).
std::string to_json_line(const bans::BanRequest& request);
std::optional<bans::BanRequest> from_json_line(const std::string& line);

}  // namespace snigate::watch_tool
