#pragma once
// The HTTP endpoint Prometheus scrapes: GET /metrics answers 200 with the exposition text,
// any other request 404 (400 when it is not HTTP at all). One request per connection
// (Connection: close), a bounded request head, a read timeout and a cap on open connections,
// so a stuck or hostile client costs a socket for a few seconds at most.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace snigate::metrics {

struct ServerOptions {
  std::size_t max_request = 8192;  // bytes of request line and headers
  std::chrono::milliseconds read_timeout{5000};
  std::size_t max_clients = 16;
};

class MetricsServer {
 public:
  // The exposition text, made at each scrape on the io_context's thread.
  using Render = std::function<std::string()>;

  // Binds `listen`; nullptr with `error` set (and advice) when it cannot.
  static std::unique_ptr<MetricsServer> start(boost::asio::io_context& io,
                                              const boost::asio::ip::tcp::endpoint& listen,
                                              Render render, std::string& error,
                                              ServerOptions options = {});
  // Call on the io_context's thread, or once it has stopped running.
  ~MetricsServer();

  boost::asio::ip::tcp::endpoint local_endpoint() const;

  struct State;

 private:
  explicit MetricsServer(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

// The response to one request head (request line and headers, CRLF CRLF included or not):
// a whole HTTP/1.1 message with Content-Length and Connection: close. Pure, for tests.
std::string respond(std::string_view head, const MetricsServer::Render& render);

}  // namespace snigate::metrics
