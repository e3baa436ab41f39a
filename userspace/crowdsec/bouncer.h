#pragma once
// snigated as a CrowdSec bouncer: on its own thread, pulls the Local API's decision stream
// (GET /v1/decisions/stream, X-Api-Key) every poll_interval, first with ?startup=true (every
// decision in force), then the deltas, and keeps the "crowdsec:<origin>" bans in step with
// it through BanManager::apply_owned (so another source's ban of the same prefix is never
// replaced nor lifted).
//
// LAPI unreachable or answering errors: the bans in force stay until they expire, pulls back
// off exponentially (up to kMaxBackoff), one log line says it went down and one that it came
// back; the first pull after a failure asks for startup again, which resynchronises a LAPI
// restarted with other decisions. A full pull also replaces a delta once resync_interval has
// passed since the last (crowdsec_config.h says what deltas miss). The data path and the
// control socket never wait for it.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "bans/ban_manager.h"
#include "crowdsec/crowdsec_config.h"
#include "crowdsec/decision_book.h"
#include "crowdsec/lapi_http.h"

namespace snigate::crowdsec {

class Bouncer {
 public:
  static constexpr std::chrono::seconds kMaxBackoff{60};
  static constexpr std::chrono::seconds kTimeout{30};  // one pull, 100,000 decisions included

  Bouncer(CrowdsecConfig cfg, bans::BanManager& bans);
  ~Bouncer();  // stops within about 100 ms, even mid-pull
  Bouncer(const Bouncer&) = delete;
  Bouncer& operator=(const Bouncer&) = delete;

 private:
  void loop();
  // What a pull asks for: the deltas, or every decision in force (startup=true) at the first
  // pull and after a failure (Startup) or once resync_interval has passed (Resync).
  enum class Pull { Delta, Startup, Resync };
  // One pull and its changes; "" on success, else what went wrong.
  std::string pull(Pull kind);
  // Waits `delay` or until the destructor says stop; false when stopping.
  bool wait(std::chrono::milliseconds delay);

  CrowdsecConfig cfg_;
  bans::BanManager& bans_;
  LapiHttp http_;
  DecisionBook book_;
  std::string target_, startup_target_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace snigate::crowdsec
