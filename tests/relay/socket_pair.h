#pragma once
// Two connected loopback sockets on one io_context, for the relays' unprivileged tests: `a`
// is the relay's end, `b` its peer's (the user or the backend). With `tcp_inq`, `a` inherits
// TCP_INQ from the listening socket, as the daemon's clients do (net/tcp_inq.h). A receive
// buffer size other than 0 is set before the handshake, so the advertised window follows it.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace snigate::relay::test {

struct SocketPair {
  using tcp = boost::asio::ip::tcp;
  explicit SocketPair(boost::asio::io_context& io, bool tcp_inq = false, int a_rcvbuf = 0,
                      int b_rcvbuf = 0)
      : a(io), b(io) {
    tcp::acceptor acceptor(io);
    acceptor.open(tcp::v4());
    if (a_rcvbuf)
      acceptor.set_option(boost::asio::socket_base::receive_buffer_size(a_rcvbuf));
    acceptor.bind({boost::asio::ip::address_v4::loopback(), 0});
    acceptor.listen();
    if (tcp_inq) {
      const int on = 1;
      EXPECT_EQ(::setsockopt(acceptor.native_handle(), IPPROTO_TCP, TCP_INQ, &on, sizeof on), 0);
    }
    b.open(tcp::v4());
    if (b_rcvbuf) b.set_option(boost::asio::socket_base::receive_buffer_size(b_rcvbuf));
    b.connect(acceptor.local_endpoint());
    acceptor.accept(a);
    a.non_blocking(true);
    b.non_blocking(true);
  }
  tcp::socket a;
  tcp::socket b;
};

}  // namespace snigate::relay::test
