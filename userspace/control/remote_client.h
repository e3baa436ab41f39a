#pragma once
// Client side of the remote ban channel, for snigate-watch on a backend host: sends bans (in
// batches) or an unban to the edge's `[remote_ban]` listener and waits for the verdicts. The
// token never crosses the wire: each request carries the edge's name, a timestamp, a random
// nonce and an HMAC-SHA256 of those and the body, keyed by the token (protocol:
// control/remote_protocol.h). Synchronous, one TCP connection per call, each request on it
// bounded by `timeout`; retries and backoff are the caller's.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bans/ban.h"
#include "control/remote_tls.h"
#include "net/prefix.h"

namespace snigate::control {

struct RemoteReply {
  enum class Status {
    Ok,       // the edge made (or lifted) the ban
    Refused,  // the edge said no for good: bad token, clock skew, prefix in `ignore`, ...
    Retry,    // try again later: unreachable, timeout, rate-limited, edge shutting down
  };
  Status status = Status::Retry;
  std::string message;  // the edge's words, or why it could not be reached
  // Refused: by the channel (bad token, clock skew, allow-list), not for the ban itself; the
  // same ban is worth sending again once the edge accepts this sender.
  bool channel = false;
  bool ok() const { return status == Status::Ok; }
};

class RemoteBanClient {
 public:
  // `endpoint`: "host:port", "192.0.2.1:7443" or "[2001:db8::1]:7443". `token`: the shared
  // secret, as read_token_file() returns it. `edge`: the edge's [remote_ban] name ("" when it
  // has none), which every request is signed for.
  RemoteBanClient(std::string endpoint, std::string token,
                  std::chrono::milliseconds timeout = std::chrono::seconds(5),
                  std::string edge = {});

  // The request's source is set by the edge ("remote:PEER"); reason, jail, matched_at, sample,
  // duration and id travel as given. `force` is never honoured remotely.
  RemoteReply send(const bans::BanRequest& request) const;
  // Many bans on one connection, packed into requests of up to kRemoteMaxBatch bans and
  // kRemoteBatchBytes: one reply per ban, in order. Once a request fails (the edge gone, a
  // timeout, a request-level refusal) the bans not yet answered share its reply.
  std::vector<RemoteReply> send(const std::vector<bans::BanRequest>& requests) const;
  RemoteReply unban(const net::Prefix& prefix) const;
  // Speak TLS to the edge: verify its certificate against files.ca (and its name or address
  // against the endpoint's host), and show files.cert. "" on success, else why.
  std::string use_tls(const RemoteTlsFiles& files);

  const std::string& endpoint() const { return endpoint_; }

 private:
  std::string endpoint_;
  std::string token_;
  std::chrono::milliseconds timeout_;
  std::string edge_;
  std::shared_ptr<boost::asio::ssl::context> tls_;  // null: plain TCP
};

// Reads a token file: its content with surrounding whitespace trimmed. nullopt (and `error`
// set) when the file cannot be read, is shorter than 16 characters, or is readable by other
// users ("chmod 600 FILE").
std::optional<std::string> read_token_file(const std::string& path, std::string& error);

}  // namespace snigate::control
