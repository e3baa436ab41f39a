#pragma once
// HTTP/1.1 to CrowdSec's Local API (Boost.Beast): one request per connection, each bounded
// by a timeout and abandoned at once when the owner stops. Synchronous, for the bouncer's
// and the source's own threads, never the data path's.
#include <atomic>
#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crowdsec/crowdsec_config.h"

namespace snigate::crowdsec {

struct HttpReply {
  unsigned status = 0;  // 0: no answer; `error` says why
  std::string body;
  std::string error;
  bool ok() const { return status >= 200 && status < 300; }
};

class LapiHttp {
 public:
  // The startup answer with 100,000 decisions is some 20 MB; a body past this is refused.
  static constexpr std::uint64_t kBodyLimit = 512ull << 20;

  LapiHttp(LapiUrl url, std::chrono::milliseconds timeout) : url_(std::move(url)), timeout_(timeout) {}

  using Headers = std::vector<std::pair<std::string, std::string>>;
  // `target` is the path after the URL's base ("/v1/decisions/stream?startup=true").
  HttpReply get(std::string_view target, const Headers& headers);
  HttpReply post(std::string_view target, const Headers& headers, std::string body);

  // From any thread: a request in progress ends within 100 ms ("stopped"), and later ones
  // at once.
  void stop() { stopping_ = true; }
  const LapiUrl& url() const { return url_; }

 private:
  HttpReply request(bool post, std::string_view target, const Headers& headers, std::string body);

  LapiUrl url_;
  std::chrono::milliseconds timeout_;
  std::atomic<bool> stopping_{false};
};

}  // namespace snigate::crowdsec
