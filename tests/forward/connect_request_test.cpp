// The CONNECT handshake against a real socket pair on 127.0.7.1: what the client reads back
// for each case, which bytes are left for the upstream, and that nothing waits forever.
#include "forward/connect_request.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

namespace snigate::forward {
namespace {

namespace asio = boost::asio;
namespace ip = asio::ip;
using tcp = ip::tcp;

const auto kLoopback = ip::make_address("127.0.7.1");
const auto kClient = ip::make_address("127.0.7.2");

struct Exchange {
  ForwardResult result;
  std::string reply;                   // everything the client read until EOF
  std::vector<std::uint8_t> leftover;  // buffer after the call
};

struct ConnectRequestTest : ::testing::Test {
  asio::io_context io;
  tcp::acceptor backend{io, tcp::endpoint(kLoopback, 0)};
  Forwarder forwarder{io.get_executor(), {}, {}};
  ConnectRules rules;

  ConnectRequestTest() { rules.rules.allow = AllowList::compile({"127.0.7.1/32"}); }
  std::string backend_target() const {
    return "127.0.7.1:" + std::to_string(backend.local_endpoint().port());
  }

  // Client writes `request` (then, if `close_after`, its FIN) and reads until the server side
  // closes; the server side runs serve_connect_request and then closes its socket.
  Exchange run(const std::string& request, bool close_after = false) {
    tcp::acceptor front(io, tcp::endpoint(kLoopback, 0));
    tcp::socket client(io);
    client.connect(front.local_endpoint());
    tcp::socket server(io);
    front.accept(server);
    asio::write(client, asio::buffer(request));
    if (close_after) client.shutdown(tcp::socket::shutdown_send);

    Exchange ex;
    auto fut = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<ForwardResult> {
          auto r = co_await serve_connect_request(server, ex.leftover, rules, forwarder, kClient);
          boost::system::error_code ignored;
          server.close(ignored);
          co_return r;
        },
        asio::use_future);
    io.run_for(std::chrono::seconds(10));
    io.restart();
    EXPECT_EQ(fut.wait_for(std::chrono::seconds(0)), std::future_status::ready) << "hung";
    ex.result = fut.get();
    boost::system::error_code ec;
    asio::read(client, asio::dynamic_buffer(ex.reply), ec);
    return ex;
  }
};

TEST_F(ConnectRequestTest, ClientOutsideTheListenersClientsGets403BeforeCredentials) {
  rules.clients = {*net::Prefix::parse("10.0.0.0/8"), *net::Prefix::parse("fd00::/8")};
  rules.auth = ProxyAuth::parse("token:secret");
  auto ex = run("CONNECT " + backend_target() + " HTTP/1.1\r\nHost: " + backend_target() +
                "\r\n\r\n");
  EXPECT_EQ(ex.result.verdict, Verdict::DeniedClient);
  EXPECT_EQ(ex.result.detail, "client 127.0.7.2 is not in 'clients'");
  EXPECT_TRUE(ex.reply.starts_with("HTTP/1.1 403 ")) << ex.reply;
  EXPECT_NE(ex.reply.find("this proxy does not serve your address"), std::string::npos) << ex.reply;
  EXPECT_EQ(ex.reply.find("Proxy-Authenticate"), std::string::npos) << ex.reply;

  rules.clients.push_back(*net::Prefix::parse("127.0.7.0/24"));
  auto inside = run("CONNECT " + backend_target() + " HTTP/1.1\r\nHost: " + backend_target() +
                    "\r\nProxy-Authorization: Bearer secret\r\n\r\n");
  EXPECT_EQ(inside.reply, "HTTP/1.1 200 Connection established\r\n\r\n");
}

TEST_F(ConnectRequestTest, AllowedDestinationGets200AndKeepsPipelinedBytes) {
  auto ex = run("CONNECT " + backend_target() + " HTTP/1.1\r\nHost: " + backend_target() +
                "\r\n\r\n\x16\x03\x01hello");
  EXPECT_EQ(ex.reply, "HTTP/1.1 200 Connection established\r\n\r\n");
  ASSERT_TRUE(ex.result.ok()) << ex.result.detail;
  EXPECT_EQ(ex.result.connected.port(), backend.local_endpoint().port());
  EXPECT_EQ(std::string(ex.leftover.begin(), ex.leftover.end()), "\x16\x03\x01hello");
  tcp::socket accepted(io);
  backend.accept(accepted);
  EXPECT_EQ(accepted.remote_endpoint(), ex.result.upstream->local_endpoint());
}

TEST_F(ConnectRequestTest, HeadSplitAcrossWritesStillParses) {
  tcp::acceptor front(io, tcp::endpoint(kLoopback, 0));
  tcp::socket client(io);
  client.connect(front.local_endpoint());
  tcp::socket server(io);
  front.accept(server);
  std::string request = "CONNECT " + backend_target() + " HTTP/1.1\r\n\r\n";
  std::vector<std::uint8_t> buffer;
  auto fut = asio::co_spawn(io, serve_connect_request(server, buffer, rules, forwarder, kClient),
                            asio::use_future);
  for (char c : request) {
    asio::write(client, asio::buffer(&c, 1));
    io.run_for(std::chrono::milliseconds(2));
  }
  io.run_for(std::chrono::seconds(5));
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_TRUE(fut.get().ok());
}

TEST_F(ConnectRequestTest, NameOffTheListIs403WithAShortBody) {
  auto ex = run("CONNECT elsewhere.test:443 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(ex.result.verdict, Verdict::DeniedName);
  EXPECT_TRUE(ex.reply.starts_with("HTTP/1.1 403 Forbidden\r\n")) << ex.reply;
  EXPECT_TRUE(ex.reply.ends_with("\r\n\r\nsnigate: elsewhere.test:443 is not on this proxy's "
                                 "allow-list\n"))
      << ex.reply;
  auto body = ex.reply.substr(ex.reply.find("\r\n\r\n") + 4);
  EXPECT_NE(ex.reply.find("Content-Length: " + std::to_string(body.size()) + "\r\n"),
            std::string::npos)
      << ex.reply;
}

TEST_F(ConnectRequestTest, OtherMethodsAre400) {
  auto ex = run("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
  EXPECT_EQ(ex.result.verdict, Verdict::BadRequest);
  EXPECT_TRUE(ex.reply.starts_with("HTTP/1.1 400 Bad Request\r\n")) << ex.reply;
  EXPECT_NE(ex.reply.find("use CONNECT host:port"), std::string::npos) << ex.reply;
}

TEST_F(ConnectRequestTest, TargetWithoutPortIs400) {
  auto ex = run("CONNECT example.com HTTP/1.1\r\n\r\n");
  EXPECT_EQ(ex.result.verdict, Verdict::BadRequest);
  EXPECT_TRUE(ex.reply.starts_with("HTTP/1.1 400 ")) << ex.reply;
}

TEST_F(ConnectRequestTest, GarbageIs400) {
  auto ex = run(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n", 13));
  EXPECT_EQ(ex.result.verdict, Verdict::BadRequest);
  EXPECT_TRUE(ex.reply.starts_with("HTTP/1.1 400 ")) << ex.reply;
}

TEST_F(ConnectRequestTest, OversizedHeadIs400) {
  rules.max_head = 256;
  auto ex = run("CONNECT a.test:443 HTTP/1.1\r\nX-Pad: " + std::string(400, 'x') + "\r\n\r\n");
  EXPECT_EQ(ex.result.verdict, Verdict::BadRequest);
  EXPECT_TRUE(ex.reply.starts_with("HTTP/1.1 400 ")) << ex.reply;
}

TEST_F(ConnectRequestTest, SlowHeadGets400AtThePrereadTimeout) {
  rules.head_timeout = std::chrono::milliseconds(200);
  auto started = std::chrono::steady_clock::now();
  auto ex = run("CONNECT a.test:443 HTTP/1.1\r\nHost: a");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
  EXPECT_EQ(ex.result.verdict, Verdict::BadRequest);
  EXPECT_EQ(ex.result.detail, "no complete request head within the preread timeout");
  EXPECT_TRUE(ex.reply.starts_with("HTTP/1.1 400 ")) << ex.reply;
}

TEST_F(ConnectRequestTest, ClientLeavingMidHeadGetsNoReply) {
  auto ex = run("CONNECT a.test:443 HTTP/1.1\r\n", /*close_after=*/true);
  EXPECT_EQ(ex.result.verdict, Verdict::BadRequest);
  EXPECT_EQ(ex.result.detail, "client closed before the end of the request head");
  EXPECT_EQ(ex.reply, "");
}

TEST_F(ConnectRequestTest, BasicAuthIsRequiredAndChecked) {
  rules.auth = ProxyAuth::parse("basic:alice:s3cret");
  std::string head = "CONNECT " + backend_target() + " HTTP/1.1\r\n";
  auto none = run(head + "\r\n");
  EXPECT_EQ(none.result.verdict, Verdict::AuthRequired);
  EXPECT_TRUE(none.reply.starts_with("HTTP/1.1 407 Proxy Authentication Required\r\n"));
  EXPECT_NE(none.reply.find("Proxy-Authenticate: Basic realm=\"snigate\"\r\n"), std::string::npos);
  // base64("alice:wrong")
  auto wrong = run(head + "Proxy-Authorization: Basic YWxpY2U6d3Jvbmc=\r\n\r\n");
  EXPECT_EQ(wrong.result.verdict, Verdict::AuthRequired);
  EXPECT_EQ(wrong.result.detail, "wrong credentials");
  // base64("alice:s3cret"), scheme in another case
  auto right = run(head + "proxy-authorization: basic YWxpY2U6czNjcmV0\r\n\r\n");
  EXPECT_EQ(right.reply, "HTTP/1.1 200 Connection established\r\n\r\n");
}

TEST_F(ConnectRequestTest, TokenAuthUsesBearer) {
  rules.auth = ProxyAuth::parse("token:t0ken");
  std::string head = "CONNECT " + backend_target() + " HTTP/1.1\r\n";
  auto wrong = run(head + "Proxy-Authorization: Bearer t0ke\r\n\r\n");
  EXPECT_TRUE(wrong.reply.starts_with("HTTP/1.1 407 ")) << wrong.reply;
  EXPECT_NE(wrong.reply.find("Proxy-Authenticate: Bearer realm=\"snigate\""), std::string::npos);
  auto right = run(head + "Proxy-Authorization: Bearer t0ken\r\n\r\n");
  EXPECT_TRUE(right.result.ok()) << right.result.detail;
}

TEST_F(ConnectRequestTest, RefusedDestinationIs502) {
  std::uint16_t port;
  {
    tcp::acceptor probe(io, tcp::endpoint(kLoopback, 0));
    port = probe.local_endpoint().port();
  }
  auto ex = run("CONNECT 127.0.7.1:" + std::to_string(port) + " HTTP/1.1\r\n\r\n");
  EXPECT_EQ(ex.result.verdict, Verdict::ConnectFailed);
  EXPECT_TRUE(ex.reply.starts_with("HTTP/1.1 502 Bad Gateway\r\n")) << ex.reply;
}

TEST_F(ConnectRequestTest, SilentDnsIs504) {
  ip::udp::socket silent(io, ip::udp::endpoint(ip::make_address("127.0.7.53"), 0));
  ResolverConfig resolver;
  resolver.servers = {"127.0.7.53:" + std::to_string(silent.local_endpoint().port())};
  resolver.timeout = std::chrono::milliseconds(300);
  Forwarder slow_dns(io.get_executor(), resolver, {});
  rules.rules.allow = AllowList::compile({"allowed.test"});
  tcp::acceptor front(io, tcp::endpoint(kLoopback, 0));
  tcp::socket client(io);
  client.connect(front.local_endpoint());
  tcp::socket server(io);
  front.accept(server);
  asio::write(client, asio::buffer(std::string("CONNECT allowed.test:443 HTTP/1.1\r\n\r\n")));
  std::vector<std::uint8_t> buffer;
  auto fut = asio::co_spawn(io, serve_connect_request(server, buffer, rules, slow_dns, kClient),
                            asio::use_future);
  io.run_for(std::chrono::seconds(5));
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(fut.get().verdict, Verdict::DnsTimeout);
  server.close();
  std::string reply;
  boost::system::error_code ec;
  asio::read(client, asio::dynamic_buffer(reply), ec);
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 504 Gateway Timeout\r\n")) << reply;
  EXPECT_NE(reply.find("DNS lookup of allowed.test timed out"), std::string::npos) << reply;
}

TEST(ConnectReply, DeniedAddressDoesNotTellWhereTheNamePoints) {
  ForwardResult r;
  r.verdict = Verdict::DeniedAddress;
  r.name = "inside.test";
  r.port = 443;
  r.resolved = {ip::make_address("10.1.2.3")};
  r.detail = "10.1.2.3: private";
  auto reply = connect_reply(r, {});
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 403 Forbidden\r\n"));
  EXPECT_EQ(reply.find("10.1.2.3"), std::string::npos) << reply;
  EXPECT_EQ(r.log_fields(), "requested=inside.test:443 resolved=10.1.2.3 verdict=denied-address");
}

// "Refused" only when the destination refused; an unreachable network is told as such (issue 15).
TEST(ConnectReply, RefusedOnlyWhenEveryAddressRefused) {
  ForwardResult r;
  r.verdict = Verdict::ConnectFailed;
  r.name = "far.test";
  r.port = 443;
  r.detail = "192.0.2.1:443: Connection refused";
  EXPECT_NE(connect_reply(r, {}).find("far.test:443 refused the connection"), std::string::npos);
  r.detail = "192.0.2.1:443: Connection refused, 192.0.2.2:443: Network is unreachable";
  auto reply = connect_reply(r, {});
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 502 Bad Gateway\r\n")) << reply;
  EXPECT_NE(reply.find("far.test:443 could not be reached"), std::string::npos) << reply;
  EXPECT_EQ(reply.find("refused"), std::string::npos) << reply;
}

TEST(ExplainNotTls, NamesTheConnectMistake) {
  std::string connect = "CONNECT a.test:443 HTTP/1.1\r\n";
  auto why = explain_not_tls(std::span(reinterpret_cast<const std::uint8_t*>(connect.data()),
                                       connect.size()));
  ASSERT_TRUE(why);
  EXPECT_EQ(*why,
            "client sent an HTTP CONNECT to a TLS listener: use a protocol=connect listener");
  std::uint8_t tls[] = {0x16, 0x03, 0x01, 0x00, 0x05};
  EXPECT_FALSE(explain_not_tls(tls));
}

TEST(ProxyAuthSpec, BadSpecsSayWhatIsExpected) {
  EXPECT_THROW(ProxyAuth::parse("basic:alice"), std::invalid_argument);
  EXPECT_THROW(ProxyAuth::parse("token:"), std::invalid_argument);
  EXPECT_THROW(ProxyAuth::parse("digest:a:b"), std::invalid_argument);
  EXPECT_EQ(ProxyAuth::parse("").kind(), ProxyAuth::Kind::None);
  EXPECT_TRUE(ProxyAuth::parse("").accepts(nullptr));
}

}  // namespace
}  // namespace snigate::forward
