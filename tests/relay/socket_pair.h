#pragma once
// Two connected loopback sockets on one io_context, for the relays' unprivileged tests: `a`
// is the relay's end, `b` its peer's (the user or the backend). With `tcp_inq`, `a` inherits
// TCP_INQ from the listening socket, as the daemon's clients do (net/tcp_inq.h).
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace snigate::relay::test {

struct SocketPair {
  using tcp = boost::asio::ip::tcp;
  explicit SocketPair(boost::asio::io_context& io, bool tcp_inq = false) : a(io), b(io) {
    tcp::acceptor acceptor(io, {boost::asio::ip::address_v4::loopback(), 0});
    if (tcp_inq) {
      const int on = 1;
      EXPECT_EQ(::setsockopt(acceptor.native_handle(), IPPROTO_TCP, TCP_INQ, &on, sizeof on), 0);
    }
    b.connect(acceptor.local_endpoint());
    acceptor.accept(a);
    a.non_blocking(true);
    b.non_blocking(true);
  }
  tcp::socket a;
  tcp::socket b;
};

}  // namespace snigate::relay::test
