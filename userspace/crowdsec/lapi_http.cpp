#include "crowdsec/lapi_http.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "snigate/version.h"

namespace snigate::crowdsec {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

HttpReply LapiHttp::get(std::string_view target, const Headers& headers) {
  return request(false, target, headers, {});
}

HttpReply LapiHttp::post(std::string_view target, const Headers& headers, std::string body) {
  return request(true, target, headers, std::move(body));
}

HttpReply LapiHttp::request(bool post, std::string_view target, const Headers& headers,
                            std::string body) {
  HttpReply reply;
  if (stopping_) {
    reply.error = "stopped";
    return reply;
  }
  asio::io_context io;
  tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  http::request<http::string_body> req{post ? http::verb::post : http::verb::get,
                                       url_.base + std::string(target), 11};
  req.set(http::field::host, url_.host);
  // NAME/VERSION: LAPI 1.4 refuses a machine's login with any other shape (it records the
  // version), and logs "bad user agent" for a bouncer's pulls.
  req.set(http::field::user_agent, std::string("snigate/") + kVersion);
  for (const auto& [name, value] : headers) req.set(name, value);
  if (post) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
    req.prepare_payload();
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(kBodyLimit);

  beast::error_code result = asio::error::timed_out;
  const char* step = "resolving";
  // The whole exchange shares one deadline: tcp_stream fails the pending operation with
  // beast::error::timeout when it passes.
  stream.expires_after(timeout_);
  resolver.async_resolve(url_.host, url_.port, [&](auto ec, auto endpoints) {
    if (ec) return void(result = ec);
    step = "connecting";
    stream.async_connect(endpoints, [&](auto ec, auto) {
      if (ec) return void(result = ec);
      step = "sending the request";
      http::async_write(stream, req, [&](auto ec, auto) {
        if (ec) return void(result = ec);
        step = "reading the answer";
        http::async_read(stream, buffer, parser, [&](auto ec, auto) { result = ec; });
      });
    });
  });
  // In slices, so stop() is seen within one. The deadline is checked here too, since the
  // stream's covers neither the resolver nor a name lookup that hangs.
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (!io.stopped()) {
    io.run_for(std::chrono::milliseconds(100));
    const bool late = std::chrono::steady_clock::now() > deadline;
    if ((stopping_ || late) && !io.stopped()) {
      resolver.cancel();
      beast::error_code ignored;
      stream.socket().close(ignored);
      io.restart();
      io.run();  // the handlers see operation_aborted and end
      reply.error = stopping_ ? std::string("stopped")
                              : url_.text + ": no answer within " +
                                    std::to_string(timeout_.count()) + " ms while " + step;
      return reply;
    }
  }
  if (result) {
    reply.error = url_.text + ": " + result.message() + " while " + step;
    return reply;
  }
  reply.status = parser.get().result_int();
  reply.body = std::move(parser.get().body());
  return reply;
}

}  // namespace snigate::crowdsec
