#include "control/remote_client.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "config/endpoint.h"
#include "control/protocol.h"
#include "control/remote_protocol.h"

namespace snigate::control {

namespace asio = boost::asio;
using asio::ip::tcp;
using nlohmann::json;
using Status = RemoteReply::Status;

namespace {

RemoteReply reply(Status status, std::string message) { return RemoteReply{status, std::move(message)}; }

// One request line out, one reply line back, all within `timeout`.
RemoteReply exchange(const std::string& endpoint, const std::string& line,
                     std::chrono::milliseconds timeout) {
  std::string error;
  auto hp = config::split_host_port(endpoint, false, &error);
  if (!hp) return reply(Status::Refused, error);

  asio::io_context io;
  tcp::resolver resolver(io);
  tcp::socket socket(io);
  std::string in;
  boost::system::error_code result = asio::error::timed_out;
  const char* step = "resolving";
  resolver.async_resolve(hp->host, std::to_string(hp->port), [&](auto ec, auto endpoints) {
    if (ec) return void(result = ec);
    step = "connecting";
    asio::async_connect(socket, endpoints, [&](auto ec, auto) {
      if (ec) return void(result = ec);
      step = "sending";
      asio::async_write(socket, asio::buffer(line), [&](auto ec, auto) {
        if (ec) return void(result = ec);
        step = "waiting for the reply";
        asio::async_read_until(socket, asio::dynamic_buffer(in, kRemoteMaxLine), '\n',
                               [&](auto ec, auto) { result = ec; });
      });
    });
  });
  io.run_for(timeout);
  if (result)
    return reply(Status::Retry, "edge " + endpoint + ": " + result.message() + " while " + step);

  json answer = json::parse(in.substr(0, in.find('\n')), nullptr, false);
  if (answer.is_discarded() || !answer.is_object())
    return reply(Status::Retry, "edge " + endpoint + " answered something that is not a JSON object");
  // Typed lookups: an edge's reply with a key of another type is an odd reply, not a crash.
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

}  // namespace

RemoteBanClient::RemoteBanClient(std::string endpoint, std::string token,
                                 std::chrono::milliseconds timeout)
    : endpoint_(std::move(endpoint)), token_(std::move(token)), timeout_(timeout) {}

RemoteReply RemoteBanClient::send(const bans::BanRequest& request) const {
  bans::BanRequest copy = request;
  copy.source.clear();  // the edge sets it from the peer address
  copy.force = false;
  json body = to_json(copy);
  body["cmd"] = "ban";
  return exchange(endpoint_, sign_remote_request(body, token_, WallClock::now(), random_nonce()),
                  timeout_);
}

RemoteReply RemoteBanClient::unban(const net::Prefix& prefix) const {
  json body{{"cmd", "unban"}, {"prefix", prefix.str()}};
  return exchange(endpoint_, sign_remote_request(body, token_, WallClock::now(), random_nonce()),
                  timeout_);
}

std::string read_token_file(const std::string& path, std::string& error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    error = "cannot read token file " + path + ": " + std::strerror(errno);
    return {};
  }
  if (st.st_mode & 0077) {
    error = "token file " + path + " is readable by other users; chmod 600 " + path;
    return {};
  }
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) {
    error = "cannot read token file " + path;
    return {};
  }
  std::string token = text.str();
  auto first = token.find_first_not_of(" \t\r\n");
  auto last = token.find_last_not_of(" \t\r\n");
  token = first == std::string::npos ? std::string() : token.substr(first, last - first + 1);
  if (token.size() < kMinTokenLength) {
    error = "token in " + path + " is shorter than " + std::to_string(kMinTokenLength) +
            " characters; write a long random one (openssl rand -hex 32 > " + path + ")";
    return {};
  }
  return token;
}

}  // namespace snigate::control
