// The endpoint Prometheus scrapes, over a real loopback socket: GET /metrics answers 200 with
// the exposition content type, anything else 404, non-HTTP 400, an endless head 431, and a
// client that sends nothing is closed at the read timeout.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "metrics/exposition.h"
#include "metrics/metrics_server.h"

namespace snigate::metrics {
namespace {

using namespace std::chrono_literals;

TEST(MetricsRespond, OnlyGetMetrics) {
  MetricsServer::Render render = [] { return std::string("snigate_up 1\n"); };
  std::string ok = respond("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", render);
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << ok;
  EXPECT_NE(ok.find("Content-Length: 13\r\n"), std::string::npos) << ok;
  EXPECT_EQ(ok.substr(ok.size() - 13), "snigate_up 1\n");
  EXPECT_EQ(respond("GET /metrics?x=1 HTTP/1.0\r\n\r\n", render).rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(respond("GET / HTTP/1.1\r\n\r\n", render).rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(respond("POST /metrics HTTP/1.1\r\n\r\n", render).rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(respond("GET /metricsx HTTP/1.1\r\n\r\n", render).rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(respond("hello\r\n\r\n", render).rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(respond("GET /metrics SSH-2.0\r\n\r\n", render).rfind("HTTP/1.1 400", 0), 0u);
}

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.read_timeout = 300ms;
    options.max_request = 1024;
    std::string error;
    server_ = MetricsServer::start(
        io_, {boost::asio::ip::make_address("127.0.0.1"), 0},
        [this] { return "snigate_scrapes_total " + std::to_string(++scrapes_) + "\n"; }, error,
        options);
    ASSERT_TRUE(server_) << error;
    thread_ = std::thread([this] { io_.run_for(20s); });
  }
  void TearDown() override {
    io_.stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
  }

  // Sends `request`, reads until the server closes (or 5 s), returns what came back;
  // `closed`: the server ended the connection (rather than the 5 s receive timeout).
  std::string exchange(const std::string& request, bool* closed = nullptr) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(server_->local_endpoint().port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const ssize_t sent =
        request.empty() ? 0 : ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    EXPECT_EQ(sent, static_cast<ssize_t>(request.size()));
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
    if (closed) *closed = n == 0;
    ::close(fd);
    return out;
  }

  boost::asio::io_context io_;
  std::unique_ptr<MetricsServer> server_;
  std::thread thread_;
  std::atomic<int> scrapes_{0};
};

TEST_F(MetricsServerTest, ServesEachScrapeFreshAndClosesTheConnection) {
  std::string first = exchange("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(first.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << first;
  EXPECT_NE(first.find("snigate_scrapes_total 1\n"), std::string::npos) << first;
  std::string second = exchange("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_NE(second.find("snigate_scrapes_total 2\n"), std::string::npos) << second;
  EXPECT_EQ(exchange("GET /other HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
}

TEST_F(MetricsServerTest, OversizedHeadIsRefusedAndSilentClientIsClosed) {
  std::string big = "GET /metrics HTTP/1.1\r\nX: " + std::string(2000, 'a') + "\r\n\r\n";
  EXPECT_EQ(exchange(big).rfind("HTTP/1.1 431", 0), 0u);
  bool closed = false;
  EXPECT_EQ(exchange("", &closed), "");
  EXPECT_TRUE(closed) << "a client that sends nothing must be closed at the read timeout";
  EXPECT_EQ(scrapes_, 0);
}

}  // namespace
}  // namespace snigate::metrics
