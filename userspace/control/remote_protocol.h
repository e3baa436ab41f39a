#pragma once
// The remote ban channel's wire format and its checks, shared by the edge's listener
// (remote_server.h) and snigate-watch's client (remote_client.h).
//
// One JSON object per line each way over TCP, any number of requests per connection, each
// answered in order. A request (version 2):
//   {"v":2,"edge":"edge-a","ts":1700000000,"nonce":"<32 hex>","body":"<JSON text>","mac":"<64 hex>"}
// body is the command as JSON text (kept as a string so both sides MAC the same bytes):
//   {"cmd":"ban", ...the ban request fields of control/protocol.h...}  {"cmd":"unban","prefix":P}
//   {"cmd":"bans","bans":[BAN,...]}   up to kRemoteMaxBatch bans, each with its own "id"
// mac = hex(HMAC-SHA256(token, "snigate-remote-ban v2\n" + edge + "\n" + ts + "\n" + nonce +
// "\n" + body)). The token itself never crosses the wire. `edge` names the edge the request is
// for ([remote_ban] name; "" when it has none): an edge refuses a request signed for another,
// so one captured on its way to edge A is no use against edge B sharing the token. The edge
// refuses a timestamp more than max_skew away from its clock, one signed before it started,
// and a nonce it has already seen within that window (replay).
// Version 1 (snigate-watch before batches) is the same without "edge" and with "v1" in the
// signed text; an edge takes it only when it has no name, since it binds no edge.
// A reply: {"ok":true,"message":".."} or {"ok":false,"error":"..","retry":true|false}, with
// "channel":true when the refusal is of the channel (token, clock, version, allow-list), not
// of the ban: once that is fixed, the same ban would be taken. "bans" is answered
// {"ok":true,"results":[R,...]}, one R per ban in order, each {"ok":true,"message":".."} or
// {"ok":false,"error":"..","retry":true|false}; a refusal of the request itself is one reply
// as above, and holds for every ban in it.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <nlohmann/json.hpp>

namespace snigate::control {

inline constexpr int kRemoteVersion = 2;
inline constexpr int kRemoteOldestVersion = 1;
// A line holds a batch. Senders fill one up to kRemoteBatchBytes of bans as they appear
// inside "body" (escaped twice: a quote in a sample costs 4 bytes), which leaves room for
// the envelope; a ban with its 1024-byte sample takes 0.5 to 4.5 KiB. The line's limit is
// what one connection may make the edge buffer.
inline constexpr std::size_t kRemoteMaxLine = 256 * 1024;
inline constexpr std::size_t kRemoteBatchBytes = 192 * 1024;
// The first request on a connection stays under the 64 KiB line of v1 edges, which refuse
// a longer one for good ("too long") but a shorter one for the channel's sake (its version),
// so a watcher ahead of its edge holds its bans instead of dropping them.
inline constexpr std::size_t kRemoteFirstBatchBytes = 32 * 1024;
inline constexpr std::size_t kRemoteMaxBatch = 500;
inline constexpr std::size_t kRemoteMaxEdgeName = 64;
inline constexpr std::size_t kMinTokenLength = 16;

using WallClock = std::chrono::system_clock;

// Lower-case hex HMAC-SHA256 of `message` keyed by `token`.
std::string hmac_sha256_hex(std::string_view token, std::string_view message);
// The bytes the MAC covers; `edge` is part of them from version 2 on.
std::string remote_signed_text(int version, std::string_view edge, std::int64_t ts,
                               std::string_view nonce, std::string_view body);
// An edge name: 1..kRemoteMaxEdgeName of [A-Za-z0-9._-] (so no newline can shift the signed
// text's fields). "" when it is one.
std::string check_edge_name(std::string_view name);
// 16 random bytes as 32 hex characters (OpenSSL's RAND_bytes).
std::string random_nonce();
// A complete version-2 request line (with the newline) carrying `body`, signed with `token`
// for the edge named `edge`.
std::string sign_remote_request(const nlohmann::json& body, std::string_view token,
                                WallClock::time_point now, const std::string& nonce,
                                std::string_view edge = {});

struct RemoteVerdict {
  bool ok = false;
  bool retry = false;          // refused for now only (replay cache full)
  std::string reason;          // when !ok: why, for the log and the reply
  std::size_t token = 0;       // when ok: index of the token that matched (for the log)
  nlohmann::json body;         // when ok: the decoded command object
};

// Checks request lines against the configured tokens: format, timestamp window, MAC (in
// constant time, against every token), then the nonce, which is remembered only once the
// MAC holds, so a forger cannot fill the replay cache. Thread-safe.
class RemoteAuth {
 public:
  // `started`: when this edge's replay memory began (the server passes now). A request signed
  // before it is refused as retryable: its nonce may have been used before a restart, and a
  // captured request replayed across a restart is exactly that. The sender signs again.
  // `edge`: this edge's name; requests signed for another are refused, and version 1 ones
  // (which name no edge) are taken only when it is "".
  RemoteAuth(std::vector<std::string> tokens, std::chrono::seconds max_skew,
             std::size_t max_nonces = 100000, WallClock::time_point started = {},
             std::string edge = {});
  RemoteVerdict verify(std::string_view line, WallClock::time_point now);
  // Keeps the newest timestamp it accepts in `path` (written at most once a second) and
  // refuses, from now on, what is not newer than the one a previous run left there. That
  // closes what the start time leaves open: a request replayed after a restart within the
  // same second, or after the clock stepped back. "" on success, else why (the start time
  // alone then guards).
  std::string remember_in(const std::string& path);

 private:
  std::vector<std::string> tokens_;
  std::chrono::seconds max_skew_;
  std::size_t max_nonces_;
  std::int64_t started_s_;
  std::string edge_;
  std::string floor_file_;
  std::int64_t newest_s_ = 0;  // the newest accepted timestamp, as in floor_file_
  std::mutex mu_;
  std::map<std::string, WallClock::time_point> nonces_;  // nonce -> when it can be forgotten
};

// Token bucket per peer address: `rate` per second, up to `burst` at once. The table is
// bounded: full buckets are forgotten when it grows past max_peers.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  RateLimiter(double rate, double burst, std::size_t max_peers = 10000);
  bool allow(const boost::asio::ip::address& peer, Clock::time_point now) {
    return take(peer, now, 1) == 1;
  }
  // Takes up to `wanted` tokens; returns how many it could.
  std::size_t take(const boost::asio::ip::address& peer, Clock::time_point now, std::size_t wanted);

 private:
  struct Bucket {
    double tokens;
    Clock::time_point last;
  };
  double rate_, burst_;
  std::size_t max_peers_;
  std::mutex mu_;
  std::map<boost::asio::ip::address, Bucket> buckets_;
};

}  // namespace snigate::control
