#include "control/remote_client.h"

#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "config/endpoint.h"
#include "config/secret_file.h"
#include "control/protocol.h"
#include "control/remote_protocol.h"

namespace snigate::control {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using nlohmann::json;
using Status = RemoteReply::Status;

namespace {

RemoteReply reply(Status status, std::string message) { return RemoteReply{status, std::move(message)}; }

// One reply object as the caller sees it. Typed lookups: an edge's reply with a key of another
// type is an odd reply, not a crash.
RemoteReply decode(const json& answer) {
  auto text = [&](const char* key, const char* fallback) {
    auto it = answer.find(key);
    return it != answer.end() && it->is_string() ? it->get<std::string>() : std::string(fallback);
  };
  auto flag = [&](const char* key) {
    auto it = answer.find(key);
    return it != answer.end() && it->is_boolean() && it->get<bool>();
  };
  if (flag("ok")) return reply(Status::Ok, text("message", ""));
  RemoteReply r = reply(flag("retry") ? Status::Retry : Status::Refused, text("error", "refused"));
  r.channel = r.status == Status::Refused && flag("channel");
  return r;
}

// One TCP connection to the edge, plain or TLS: request lines out, one reply line back for
// each, every exchange bounded by `timeout`. A failure leaves `failed` set for the rest.
class Connection {
 public:
  Connection(std::string endpoint, std::chrono::milliseconds timeout, ssl::context* tls)
      : endpoint_(std::move(endpoint)), timeout_(timeout), tls_context_(tls), socket_(io_) {}

  // nullopt once failed: `failed` says why.
  std::optional<json> exchange(const std::string& line) {
    if (failed) return std::nullopt;
    if (!connected_ && !connect()) return std::nullopt;
    boost::system::error_code result = asio::error::timed_out;
    const char* step = "sending";
    auto start = [&](auto& stream) {
      asio::async_write(stream, asio::buffer(line), [&](auto ec, auto) {
        if (ec) return void(result = ec);
        step = "waiting for the reply";
        asio::async_read_until(stream, asio::dynamic_buffer(in_, kRemoteMaxLine), '\n',
                               [&](auto ec, auto) { result = ec; });
      });
    };
    if (tls_) start(*tls_);
    else start(socket_);
    if (!run(result, step)) return std::nullopt;
    const auto end = in_.find('\n');
    json answer = json::parse(in_.substr(0, end), nullptr, false);
    in_.erase(0, end + 1);
    if (answer.is_discarded() || !answer.is_object())
      return fail(reply(Status::Retry, "edge " + endpoint_ + " answered something that is not a JSON object"));
    return answer;
  }

  std::optional<RemoteReply> failed;

 private:
  bool connect() {
    std::string error;
    auto hp = config::split_host_port(endpoint_, false, &error);
    if (!hp) {
      fail(reply(Status::Refused, error));
      return false;
    }
    boost::system::error_code result = asio::error::timed_out;
    const char* step = "resolving";
    resolver_.async_resolve(hp->host, std::to_string(hp->port), [&](auto ec, auto endpoints) {
      if (ec) return void(result = ec);
      step = "connecting";
      asio::async_connect(socket_, endpoints, [&](auto ec, auto) {
        if (ec || !tls_context_) return void(result = ec);
        step = "in the TLS handshake";
        tls_.emplace(socket_, *tls_context_);
        // The edge's certificate must name the host (or address) we were told to reach.
        tls_->set_verify_callback(ssl::host_name_verification(hp->host));
        boost::system::error_code not_an_address;
        asio::ip::make_address(hp->host, not_an_address);
        if (not_an_address)  // SNI carries host names, never addresses (RFC 6066, section 3)
          SSL_set_tlsext_host_name(tls_->native_handle(), hp->host.c_str());
        tls_->async_handshake(ssl::stream_base::client, [&](auto ec) { result = ec; });
      });
    });
    return connected_ = run(result, step);
  }
  // Runs the pending operation for up to the timeout; false (and failed set) when it did not
  // complete without error.
  bool run(boost::system::error_code& result, const char*& step) {
    io_.restart();
    io_.run_for(timeout_);
    if (!io_.stopped()) {  // timed out: cancel, and let the handlers see it
      boost::system::error_code ignored;
      socket_.close(ignored);
      resolver_.cancel();
      io_.restart();
      io_.run();
      result = asio::error::timed_out;
    }
    if (!result) return true;
    fail(reply(Status::Retry, "edge " + endpoint_ + ": " + result.message() + " while " + step));
    return false;
  }
  std::nullopt_t fail(RemoteReply r) {
    failed = std::move(r);
    return std::nullopt;
  }

  std::string endpoint_;
  std::chrono::milliseconds timeout_;
  ssl::context* tls_context_;
  asio::io_context io_;
  tcp::resolver resolver_{io_};
  tcp::socket socket_;
  std::optional<ssl::stream<tcp::socket&>> tls_;
  bool connected_ = false;
  std::string in_;
};

json ban_body(const bans::BanRequest& request) {
  bans::BanRequest copy = request;
  copy.source.clear();  // the edge sets it from the peer address
  copy.force = false;
  return to_json(copy);
}

}  // namespace

RemoteBanClient::RemoteBanClient(std::string endpoint, std::string token,
                                 std::chrono::milliseconds timeout, std::string edge)
    : endpoint_(std::move(endpoint)), token_(std::move(token)), timeout_(timeout), edge_(std::move(edge)) {}

RemoteReply RemoteBanClient::send(const bans::BanRequest& request) const {
  return send(std::vector<bans::BanRequest>{request}).at(0);
}

std::vector<RemoteReply> RemoteBanClient::send(const std::vector<bans::BanRequest>& requests) const {
  std::vector<RemoteReply> out;
  out.reserve(requests.size());
  Connection connection(endpoint_, timeout_, tls_.get());
  std::size_t next = 0;
  while (next < requests.size()) {
    // Fill one request up to the batch limits; a ban alone always goes.
    json bans = json::array();
    std::size_t bytes = 0;
    const std::size_t budget = next == 0 ? kRemoteFirstBatchBytes : kRemoteBatchBytes;
    while (next + bans.size() < requests.size() && bans.size() < kRemoteMaxBatch) {
      json item = ban_body(requests[next + bans.size()]);
      // As it will be on the wire: its text inside the body string, escaped once more.
      const auto size =
          json(item.dump(-1, ' ', false, json::error_handler_t::replace)).dump().size();
      if (!bans.empty() && bytes + size > budget) break;
      bytes += size;
      bans.push_back(std::move(item));
    }
    const std::size_t count = bans.size();
    json body{{"cmd", "bans"}, {"bans", std::move(bans)}};
    auto answer = connection.exchange(
        sign_remote_request(body, token_, WallClock::now(), random_nonce(), edge_));
    if (!answer) break;
    auto results = answer->find("results");
    if (results == answer->end() || !results->is_array() || results->size() != count) {
      // A refusal of the request itself (token, clock, rate): the rest would meet it too.
      RemoteReply whole = decode(*answer);
      if (whole.ok()) whole = reply(Status::Retry, "edge " + endpoint_ + " answered a batch of " +
                                                       std::to_string(count) + " without one result per ban");
      out.resize(requests.size(), whole);
      return out;
    }
    for (const auto& r : *results)
      out.push_back(r.is_object() ? decode(r)
                                  : reply(Status::Retry, "edge " + endpoint_ +
                                                             " answered a ban with something that "
                                                             "is not a JSON object"));
    next += count;
  }
  // The connection failed: the bans not answered share why.
  if (out.size() < requests.size()) out.resize(requests.size(), *connection.failed);
  return out;
}

RemoteReply RemoteBanClient::unban(const net::Prefix& prefix) const {
  json body{{"cmd", "unban"}, {"prefix", prefix.str()}};
  Connection connection(endpoint_, timeout_, tls_.get());
  auto answer = connection.exchange(
      sign_remote_request(body, token_, WallClock::now(), random_nonce(), edge_));
  return answer ? decode(*answer) : *connection.failed;
}

std::string RemoteBanClient::use_tls(const RemoteTlsFiles& files) {
  std::string error;
  tls_ = make_watcher_tls(files, error);
  return error;
}

std::optional<std::string> read_token_file(const std::string& path, std::string& error) {
  std::string why;
  auto token = config::read_secret_file(path, &why);
  if (!token) {
    error = "token file: " + why;
    return std::nullopt;
  }
  if (token->size() < kMinTokenLength) {
    error = "token in " + path + " is shorter than " + std::to_string(kMinTokenLength) +
            " characters; write a long random one (openssl rand -hex 32 > " + path + ")";
    return std::nullopt;
  }
  return token;
}

}  // namespace snigate::control
