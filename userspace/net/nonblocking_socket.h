#pragma once
// TCP sockets born non-blocking (accept4 and socket with SOCK_NONBLOCK | SOCK_CLOEXEC), handed
// to asio as such. asio would otherwise set O_NONBLOCK itself with an ioctl per socket before
// its first wait, and, for a descriptor it adopts with assign(), remove it from epoll with an
// EPOLL_CTL_DEL before close (in case it was dup()-ed): two system calls per socket that a
// descriptor this process made itself and closes once does not need.
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

namespace snigate::net {

// A new non-blocking TCP socket of `protocol` as `socket` (which must be closed).
void open_nonblocking(boost::asio::ip::tcp::socket& socket, const boost::asio::ip::tcp& protocol,
                      boost::system::error_code& ec);

// accept4(2) of one pending connection on `acceptor` into `socket` (which must be closed),
// non-blocking and close-on-exec; `peer` gets its address. would_block when none is pending.
void accept_nonblocking(boost::asio::ip::tcp::acceptor& acceptor,
                        boost::asio::ip::tcp::socket& socket,
                        boost::asio::ip::tcp::endpoint& peer, boost::system::error_code& ec);

}  // namespace snigate::net
