#pragma once
// snigate-watch's outbox: every ban a jail makes is written to disk before anything else
// (queue_journal.h), then sent to the edge in order, in batches; while the edge is
// unreachable the sender retries with exponential backoff, and a restart resumes from the
// file, so no ban is lost. A ban the edge refuses for the channel's sake (wrong token, clock
// skew: RemoteReply::channel) is held, with the reason, and queued again as soon as the edge
// accepts a ban from us.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bans/ban.h"
#include "control/remote_client.h"
#include "queue_journal.h"

namespace snigate::watch_tool {

struct BanQueueOptions {
  std::string file;  // the journal (queue_journal.h); empty: memory only
  std::chrono::milliseconds backoff_min{1000};
  std::chrono::milliseconds backoff_max{60000};
  std::size_t max_held = 10000;  // channel-refused bans kept; the oldest go beyond this
  std::size_t max_batch = 5000;  // bans handed to one Send
};

class BanQueue {
 public:
  // One reply per ban, in order (RemoteBanClient::send of a batch).
  using Send = std::function<std::vector<control::RemoteReply>(const std::vector<bans::BanRequest>&)>;

  // Loads what the file still holds and starts the sender thread.
  BanQueue(BanQueueOptions options, Send send);
  ~BanQueue();  // stops the sender; what is unsent stays in the file
  BanQueue(const BanQueue&) = delete;
  BanQueue& operator=(const BanQueue&) = delete;

  // Queues (with an idempotency id, when the request has none) and appends it to the file.
  // Returns false when the disk refused (the ban stays queued in memory; the sender rewrites
  // the file from memory at its next turn).
  bool push(const bans::BanRequest& request);
  std::size_t pending() const;
  // Bans the edge refused for the channel's sake, waiting for it to accept us again.
  std::size_t held() const;
  std::string held_reason() const;  // the latest refusal, "" when none is held
  // Waits until the queue is empty or `limit` passes; true when empty.
  bool drain(std::chrono::milliseconds limit);

 private:
  void run();
  struct Settled {
    std::size_t retried = 0;   // bans to send again after a backoff
    std::string retry_reason;  // the first of them's
    bool progress = false;     // some ban was answered for good
  };
  // Acts on what the edge said of a batch just sent (the first `count` pending bans).
  Settled settle_locked(std::size_t count, const std::vector<control::RemoteReply>& replies);
  void release_held_locked(std::size_t after);

  BanQueueOptions options_;
  Send send_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  QueueState state_;
  std::optional<QueueJournal> journal_;  // none when memory only
  bool stopping_ = false;
  std::thread sender_;
};

}  // namespace snigate::watch_tool
