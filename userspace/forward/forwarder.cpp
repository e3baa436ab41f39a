#include "forward/forwarder.h"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "net/deadline.h"
#include "net/tcp_inq.h"

namespace snigate::forward {

namespace asio = boost::asio;
namespace ip = asio::ip;
using tcp = ip::tcp;

const char* to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::Allowed: return "allowed";
    case Verdict::BadRequest: return "bad-request";
    case Verdict::AuthRequired: return "auth-required";
    case Verdict::DeniedClient: return "denied-client";
    case Verdict::DeniedName: return "denied-name";
    case Verdict::DeniedAddress: return "denied-address";
    case Verdict::DnsNotFound: return "dns-not-found";
    case Verdict::DnsError: return "dns-error";
    case Verdict::DnsTimeout: return "dns-timeout";
    case Verdict::ConnectFailed: return "connect-failed";
    case Verdict::ConnectTimeout: return "connect-timeout";
  }
  return "?";
}

int http_status(Verdict verdict) {
  switch (verdict) {
    case Verdict::Allowed: return 200;
    case Verdict::BadRequest: return 400;
    case Verdict::AuthRequired: return 407;
    case Verdict::DeniedClient:
    case Verdict::DeniedName:
    case Verdict::DeniedAddress: return 403;
    case Verdict::DnsNotFound:
    case Verdict::DnsError:
    case Verdict::ConnectFailed: return 502;
    case Verdict::DnsTimeout:
    case Verdict::ConnectTimeout: return 504;
  }
  return 500;
}

std::string ForwardResult::requested() const {
  if (name.empty()) return {};
  return port ? name + ":" + std::to_string(port) : name;
}

std::string ForwardResult::resolved_list() const {
  std::string out;
  for (std::size_t i = 0; i < resolved.size(); ++i)
    out += (i ? "," : "") + resolved[i].to_string();
  return out;
}

std::string ForwardResult::log_fields() const {
  auto dash = [](std::string s) { return s.empty() ? std::string("-") : s; };
  return "requested=" + dash(requested()) + " resolved=" + dash(resolved_list()) +
         " verdict=" + to_string(verdict);
}

Forwarder::Forwarder(asio::any_io_executor executor, ResolverConfig resolver,
                     std::vector<ip::address> own_addresses)
    : executor_(executor), resolver_(executor, std::move(resolver)), own_(std::move(own_addresses)) {}

namespace {

// One connect attempt bounded by `timeout`: the deadline closes the socket, which aborts the
// pending connect.
asio::awaitable<boost::system::error_code> connect_within(tcp::socket& socket,
                                                          const tcp::endpoint& to,
                                                          std::chrono::milliseconds timeout,
                                                          bool& timed_out) {
  net::Deadline deadline(socket.get_executor());
  deadline.arm(timeout, [&socket] {
    boost::system::error_code ignored;
    socket.close(ignored);
  });
  boost::system::error_code ec;
  co_await socket.async_connect(to, asio::redirect_error(asio::use_awaitable, ec));
  deadline.cancel();
  timed_out = deadline.expired();
  co_return ec;
}

}  // namespace

asio::awaitable<ForwardResult> Forwarder::open(std::string requested, std::uint16_t port,
                                               const Rules& rules) {
  ForwardResult result;
  result.name = normalize_name(requested);
  result.port = port;
  if (result.name.empty() || port == 0) {
    result.verdict = Verdict::BadRequest;
    result.detail = "no destination name or port";
    co_return result;
  }
  boost::system::error_code ec;
  auto literal = ip::make_address(result.name, ec);
  bool is_literal = !ec;
  bool listed = is_literal ? rules.allow.matches_address(literal) : rules.allow.matches_name(result.name);
  if (!listed) {
    result.verdict = Verdict::DeniedName;
    result.detail = rules.allow.empty() ? "the allow-list is empty"
                    : is_literal        ? "address not on the allow-list"
                                        : "name not on the allow-list";
    co_return result;
  }

  if (is_literal) {
    result.resolved.push_back(literal);
  } else {
    auto resolution = co_await resolver_.resolve(result.name);
    result.resolved = resolution.addresses;
    switch (resolution.status) {
      case ResolveStatus::Ok: break;
      case ResolveStatus::NotFound: result.verdict = Verdict::DnsNotFound; break;
      case ResolveStatus::Timeout: result.verdict = Verdict::DnsTimeout; break;
      case ResolveStatus::Error: result.verdict = Verdict::DnsError; break;
    }
    if (resolution.status != ResolveStatus::Ok) {
      result.detail = resolution.error;
      co_return result;
    }
  }

  AddressPolicy policy{rules.allow_private, own_};
  std::vector<ip::address> usable;
  std::string refused;
  for (const auto& address : result.resolved) {
    auto verdict = check_address(address, rules.allow, policy);
    if (verdict.allowed) {
      usable.push_back(address);
    } else {
      refused += (refused.empty() ? "" : ", ") + address.to_string() + ": " + verdict.reason;
    }
  }
  if (usable.empty()) {
    result.verdict = Verdict::DeniedAddress;
    result.detail = refused;
    co_return result;
  }

  std::string failures;
  bool any_timeout = false;
  for (const auto& address : usable) {
    tcp::socket socket(executor_);
    tcp::endpoint to(address, port);
    bool timed_out = false;
    auto error = co_await connect_within(socket, to, rules.connect_timeout, timed_out);
    if (!error && socket.is_open()) {
      socket.set_option(tcp::no_delay(true), ec);
      socket.set_option(net::tcp_inq(true), ec);  // the relay's reads: net/tcp_inq.h
      result.verdict = Verdict::Allowed;
      result.connected = to;
      result.upstream.emplace(std::move(socket));
      co_return result;
    }
    any_timeout |= timed_out;
    failures += (failures.empty() ? "" : ", ") + to.address().to_string() + ": " +
                (timed_out ? "no answer within " + std::to_string(rules.connect_timeout.count()) + "ms"
                           : error.message());
  }
  result.verdict = any_timeout ? Verdict::ConnectTimeout : Verdict::ConnectFailed;
  result.detail = failures;
  co_return result;
}

}  // namespace snigate::forward
