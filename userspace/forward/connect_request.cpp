#include "forward/connect_request.h"

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <system_error>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "net/deadline.h"
#include "parser/http_host.h"

namespace snigate::forward {

namespace asio = boost::asio;
namespace ip = asio::ip;
using tcp = asio::ip::tcp;

namespace {

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "Connection established";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 407: return "Proxy Authentication Required";
    case 502: return "Bad Gateway";
    case 504: return "Gateway Timeout";
  }
  return "Error";
}

std::string destination(const ForwardResult& r) {
  if (r.name.empty()) return "the destination";
  bool v6 = r.name.find(':') != std::string::npos;
  return (v6 ? "[" + r.name + "]" : r.name) + ":" + std::to_string(r.port);
}

// Whether every address tried answered with a refusal (detail: "ADDR: REASON, ..."): only
// then did the destination refuse; an unreachable network or a reset is something else.
bool all_refused(const std::string& detail) {
  const std::string refused = std::error_code(ECONNREFUSED, std::system_category()).message();
  std::size_t failures = 0, refusals = 0;
  for (std::size_t at = 0; at < detail.size(); ++failures) {
    std::size_t end = detail.find(", ", at);
    if (end == std::string::npos) end = detail.size();
    std::string_view one(detail.data() + at, end - at);
    refusals += one.ends_with(": " + refused);
    at = end + 2;
  }
  return failures > 0 && refusals == failures;
}

// Short, and free of resolved addresses: what was found inside stays in the log.
std::string body(const ForwardResult& r) {
  switch (r.verdict) {
    case Verdict::Allowed: return {};
    case Verdict::BadRequest: return "bad CONNECT request: " + r.detail;
    case Verdict::AuthRequired: return "proxy authentication required";
    case Verdict::DeniedClient: return "this proxy does not serve your address";
    case Verdict::DeniedName: return destination(r) + " is not on this proxy's allow-list";
    case Verdict::DeniedAddress:
      return destination(r) + " resolves only to addresses this proxy does not reach";
    case Verdict::DnsNotFound: return r.name + " does not resolve";
    case Verdict::DnsError: return "DNS lookup of " + r.name + " failed";
    case Verdict::DnsTimeout: return "DNS lookup of " + r.name + " timed out";
    case Verdict::ConnectFailed:
      return destination(r) + (all_refused(r.detail) ? " refused the connection" : " could not be reached");
    case Verdict::ConnectTimeout: return destination(r) + " did not answer in time";
  }
  return {};
}

enum class ReadEnd { Data, Closed, Timeout };

// One read of whatever the client sends next, bounded by the time `at`; `why` tells a failure.
// The deadline reaches the socket only while the read runs.
asio::awaitable<ReadEnd> read_some_until(tcp::socket& client, std::vector<std::uint8_t>& buffer,
                                         std::size_t max, net::Deadline::Clock::time_point at,
                                         std::string& why) {
  net::Deadline deadline(client.get_executor());
  deadline.arm_at(at, [&client] {
    boost::system::error_code ignored;
    client.cancel(ignored);
  });
  std::size_t old = buffer.size();
  buffer.resize(old + std::min<std::size_t>(4096, max - old));
  boost::system::error_code ec;
  std::size_t n = co_await client.async_read_some(
      asio::buffer(buffer.data() + old, buffer.size() - old),
      asio::redirect_error(asio::use_awaitable, ec));
  deadline.cancel();
  buffer.resize(old + n);
  if (deadline.expired()) {
    why = "no complete request head within the preread timeout";
    co_return ReadEnd::Timeout;
  }
  if (!ec && n > 0) co_return ReadEnd::Data;
  why = ec == asio::error::eof || !ec ? "client closed before the end of the request head"
                                      : "reading the request head: " + ec.message();
  co_return ReadEnd::Closed;
}

}  // namespace

std::string connect_reply(const ForwardResult& result, const ProxyAuth& auth) {
  int status = http_status(result.verdict);
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
  if (result.ok()) return out + "\r\n";
  std::string text = "snigate: " + body(result) + "\n";
  if (result.verdict == Verdict::AuthRequired)
    out += "Proxy-Authenticate: " + auth.challenge() + "\r\n";
  out += "Content-Type: text/plain\r\nContent-Length: " + std::to_string(text.size()) +
         "\r\nConnection: close\r\n\r\n" + text;
  return out;
}

asio::awaitable<ForwardResult> serve_connect_request(tcp::socket& client,
                                                     std::vector<std::uint8_t>& buffer,
                                                     const ConnectRules& rules,
                                                     Forwarder& forwarder,
                                                     const ip::address& client_address,
                                                     OnDestination on_destination) {
  ForwardResult result;
  const auto deadline = net::Deadline::Clock::now() + rules.head_timeout;
  parser::HttpPreread head;
  for (;;) {
    head = parser::parse_http_preread(buffer, rules.max_head);
    if (head.status != parser::Status::NeedMore) break;
    if (buffer.size() >= rules.max_head) {
      head.status = parser::Status::Error;
      head.error = "request head larger than " + std::to_string(rules.max_head) + " bytes";
      break;
    }
    std::string why;
    auto end = co_await read_some_until(client, buffer, rules.max_head, deadline, why);
    if (end == ReadEnd::Data) continue;
    result.detail = why;
    if (end == ReadEnd::Closed) co_return result;  // nobody left to answer
    break;                                          // a slow client still gets its 400
  }

  if (head.status == parser::Status::Error) {
    result.detail = head.error;
  } else if (head.status == parser::Status::Done) {
    const auto& h = head.head;
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(head.head_bytes));
    if (h.method != "CONNECT") {
      result.detail = "method " + h.method + " is not served here; use CONNECT host:port";
    } else if (h.host.empty() || !h.port || *h.port == 0) {
      result.detail = "target '" + h.target + "' is not host:port";
    } else if (!rules.clients.empty() && !net::contains_any(rules.clients, client_address)) {
      result.verdict = Verdict::DeniedClient;
      result.name = h.host;
      result.port = *h.port;
      result.detail = "client " + net::unmap(client_address).to_string() + " is not in 'clients'";
    } else if (!rules.auth.accepts(h.header("Proxy-Authorization"))) {
      result.verdict = Verdict::AuthRequired;
      result.name = h.host;
      result.port = *h.port;
      result.detail = h.header("Proxy-Authorization") ? "wrong credentials" : "no credentials";
    } else {
      if (on_destination) on_destination(h.host, *h.port);
      result = co_await forwarder.open(h.host, *h.port, rules.rules);
    }
  }

  std::string reply = connect_reply(result, rules.auth);
  boost::system::error_code ec;
  co_await asio::async_write(client, asio::buffer(reply),
                             asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    // The destination stays in the verdict; without a client there is nothing to relay.
    result.detail += (result.detail.empty() ? "" : "; ") + std::string("writing the reply: ") +
                     ec.message();
    result.upstream.reset();
  } else if (!result.ok()) {
    // The reply is all the client gets; FIN after it so the client reads it before the close.
    client.shutdown(tcp::socket::shutdown_send, ec);
  }
  co_return result;
}

std::optional<std::string> explain_not_tls(std::span<const std::uint8_t> first_bytes) {
  std::string_view text(reinterpret_cast<const char*>(first_bytes.data()),
                        std::min<std::size_t>(first_bytes.size(), 8));
  if (text.starts_with("CONNECT "))
    return "client sent an HTTP CONNECT to a TLS listener: use a protocol=connect listener";
  for (std::string_view method : {"GET ", "POST ", "HEAD ", "PUT ", "OPTIONS "})
    if (text.starts_with(method))
      return "client sent plain HTTP to a TLS listener: use https, or a protocol=http listener";
  return std::nullopt;
}

}  // namespace snigate::forward
