#include "control/remote_protocol.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace snigate::control {

using nlohmann::json;

namespace {

std::string hex(const unsigned char* data, std::size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 0xf];
  }
  return out;
}

// Timestamps beyond +-2^40 s are no clock's (the verifier clamps to the same range).
bool in_range(std::int64_t s) { return s >= -(std::int64_t{1} << 40) && s <= (std::int64_t{1} << 40); }

bool is_hex(std::string_view s, std::size_t size) {
  return s.size() == size && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::int64_t unix_seconds(WallClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// Written aside and renamed, so a crash leaves the old or the new value. Not fsynced: it
// guards restarts of the daemon; after a reboot the start time is well past it anyway.
bool write_floor(const std::string& path, std::int64_t ts) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << ts << "\n";
    if (!out.flush()) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

std::string hmac_sha256_hex(std::string_view token, std::string_view message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (!HMAC(EVP_sha256(), token.data(), static_cast<int>(token.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &size))
    throw std::runtime_error("HMAC-SHA256 failed in libcrypto");
  return hex(mac, size);
}

std::string remote_signed_text(int version, std::string_view edge, std::int64_t ts,
                               std::string_view nonce, std::string_view body) {
  std::string text = "snigate-remote-ban v" + std::to_string(version) + "\n";
  if (version >= 2) text.append(edge).append("\n");
  text += std::to_string(ts) + "\n";
  text.append(nonce);
  text += "\n";
  text.append(body);
  return text;
}

std::string check_edge_name(std::string_view name) {
  if (name.empty() || name.size() > kRemoteMaxEdgeName)
    return "an edge name has 1 to " + std::to_string(kRemoteMaxEdgeName) + " characters";
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return "an edge name is made of letters, digits, '.', '_' and '-' (such as \"edge-a\")";
  return {};
}

std::string random_nonce() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("RAND_bytes failed");
  return hex(bytes, sizeof bytes);
}

std::string sign_remote_request(const json& body, std::string_view token,
                                WallClock::time_point now, const std::string& nonce,
                                std::string_view edge) {
  std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  std::int64_t ts = unix_seconds(now);
  json request{{"v", kRemoteVersion},
               {"edge", edge},
               {"ts", ts},
               {"nonce", nonce},
               {"body", text},
               {"mac", hmac_sha256_hex(token, remote_signed_text(kRemoteVersion, edge, ts, nonce, text))}};
  return request.dump() + "\n";
}

RemoteAuth::RemoteAuth(std::vector<std::string> tokens, std::chrono::seconds max_skew,
                       std::size_t max_nonces, WallClock::time_point started, std::string edge)
    : tokens_(std::move(tokens)),
      max_skew_(max_skew),
      max_nonces_(max_nonces),
      started_s_(unix_seconds(started)),
      edge_(std::move(edge)) {}

std::string RemoteAuth::remember_in(const std::string& path) {
  std::lock_guard lock(mu_);
  std::int64_t left = 0;
  {
    std::ifstream in(path);
    if (in && !(in >> left) && !in.eof()) return path + ": not a timestamp; remove it";
  }
  if (!in_range(left)) return path + ": not a timestamp; remove it";
  // What the previous run took up to its last second is refused: start just after it.
  started_s_ = std::max(started_s_, left + 1);
  newest_s_ = left;
  floor_file_ = path;
  if (!std::ifstream(path) && !write_floor(path, left))
    return "cannot write " + path + ": " + std::strerror(errno);
  return {};
}

RemoteVerdict RemoteAuth::verify(std::string_view line, WallClock::time_point now) {
  RemoteVerdict v;
  auto refuse = [&](std::string reason) {
    v.reason = std::move(reason);
    return v;
  };
  json req = json::parse(line, nullptr, false);
  if (req.is_discarded() || !req.is_object()) return refuse("not a JSON object");
  // Typed lookups only: json::value() throws on a key of another type ({"v":"1"}), and an
  // exception here would end the edge's control loop for an unauthenticated peer.
  auto version = req.find("v");
  if (version == req.end() || !version->is_number_integer() ||
      version->get<std::int64_t>() < kRemoteOldestVersion ||
      version->get<std::int64_t>() > kRemoteVersion)
    return refuse("unsupported protocol version (this edge speaks v" +
                  std::to_string(kRemoteOldestVersion) + " to v" + std::to_string(kRemoteVersion) + ")");
  const int v_number = static_cast<int>(version->get<std::int64_t>());
  std::string edge_text;
  if (v_number >= 2) {
    auto edge = req.find("edge");
    if (edge == req.end() || !edge->is_string())
      return refuse("malformed request: v2 needs \"edge\", the name of the edge it is for");
    edge_text = edge->get<std::string>();
  }
  auto ts = req.find("ts"), nonce = req.find("nonce"), body = req.find("body"),
       mac = req.find("mac");
  if (ts == req.end() || !ts->is_number_integer() || nonce == req.end() || !nonce->is_string() ||
      body == req.end() || !body->is_string() || mac == req.end() || !mac->is_string())
    return refuse("malformed request: ts, nonce, body and mac are required");
  const auto& nonce_text = nonce->get_ref<const std::string&>();
  const auto& mac_text = mac->get_ref<const std::string&>();
  const auto& body_text = body->get_ref<const std::string&>();
  if (!is_hex(nonce_text, 32)) return refuse("malformed nonce (32 lower-case hex characters)");
  if (!is_hex(mac_text, 64)) return refuse("malformed mac (64 lower-case hex characters)");

  // In whole seconds, and clamped first: a timestamp near the ends of int64 would overflow
  // the clock's nanoseconds (and the subtraction) before any comparison.
  const std::int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const std::int64_t ts_s = std::clamp<std::int64_t>(ts->get<std::int64_t>(), -(std::int64_t{1} << 40),
                                                     std::int64_t{1} << 40);
  const std::int64_t skew = now_s - ts_s;
  if (skew > max_skew_.count() || -skew > max_skew_.count())
    return refuse("timestamp " + std::to_string(skew) + " s off this edge's clock (allowed: " +
                  std::to_string(max_skew_.count()) + " s); check both clocks (NTP)");
  const auto sent = WallClock::time_point(std::chrono::seconds(ts_s));

  std::string text = remote_signed_text(v_number, edge_text, ts->get<std::int64_t>(), nonce_text, body_text);
  bool matched = false;
  for (std::size_t i = 0; i < tokens_.size(); ++i) {
    auto expected = hmac_sha256_hex(tokens_[i], text);
    if (CRYPTO_memcmp(expected.data(), mac_text.data(), expected.size()) == 0 && !matched) {
      matched = true;
      v.token = i;
    }
  }
  if (!matched) return refuse("bad token (no configured token signs this request)");
  // After the MAC, so only a token holder learns this edge's name.
  if (v_number < 2 && !edge_.empty())
    return refuse("a v1 request names no edge, and this edge (\"" + edge_ +
                  "\") takes only requests signed for it; upgrade snigate-watch and set [edge] "
                  "name = \"" + edge_ + "\"");
  if (edge_text != edge_)
    return refuse("signed for edge \"" + edge_text + "\", not this one (\"" + edge_ +
                  "\", [remote_ban] name); set [edge] name in snigate-watch to this edge's name");
  // Whole seconds, as ts is: what was signed in the very second the edge started passes (a
  // watcher sending at once must not be turned away); remember_in() closes that second.
  if (ts_s < started_s_) {
    v.retry = true;
    return refuse("signed before this edge started (its replay memory starts then); sign it again");
  }

  {
    std::lock_guard lock(mu_);
    if (nonces_.size() >= max_nonces_)
      std::erase_if(nonces_, [&](const auto& n) { return n.second < now; });
    if (nonces_.count(nonce_text)) return refuse("replayed request (nonce already used)");
    if (nonces_.size() >= max_nonces_) {
      v.retry = true;
      return refuse("too many requests in the replay window; try again later");
    }
    // Once the timestamp leaves the window the request is refused anyway: forget it then.
    nonces_.emplace(nonce_text, sent + max_skew_);
    if (!floor_file_.empty() && ts_s > newest_s_) {
      newest_s_ = ts_s;
      write_floor(floor_file_, ts_s);
    }
  }

  v.body = json::parse(body_text, nullptr, false);
  if (v.body.is_discarded() || !v.body.is_object()) return refuse("body is not a JSON object");
  v.ok = true;
  return v;
}

RateLimiter::RateLimiter(double rate, double burst, std::size_t max_peers)
    : rate_(rate), burst_(std::max(1.0, burst)), max_peers_(max_peers) {}

std::size_t RateLimiter::take(const boost::asio::ip::address& peer, Clock::time_point now,
                              std::size_t wanted) {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(peer);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_peers_) {
      std::erase_if(buckets_, [&](const auto& b) {
        double refill = std::chrono::duration<double>(now - b.second.last).count() * rate_;
        return b.second.tokens + refill >= burst_;
      });
      if (buckets_.size() >= max_peers_) return 0;
    }
    it = buckets_.emplace(peer, Bucket{burst_, now}).first;
  }
  Bucket& b = it->second;
  double elapsed = std::chrono::duration<double>(now - b.last).count();
  b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
  b.last = now;
  const auto granted = std::min(wanted, static_cast<std::size_t>(b.tokens));
  b.tokens -= static_cast<double>(granted);
  return granted;
}

}  // namespace snigate::control
