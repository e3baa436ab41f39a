#include "net/nonblocking_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "net/last_error.h"
#include "net/ready_wait.h"

namespace snigate::net {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

// asio keeps what it knows of a socket in basic_socket's protected implementation; a derived
// class may name it, and a pointer to that member reaches it on any tcp::socket.
struct SocketState : tcp::socket {
  static void adopted(tcp::socket& socket) {
    auto& impl = (socket.*(&SocketState::impl_)).get_implementation();
    namespace ops = asio::detail::socket_ops;
    // O_NONBLOCK is on already: what socket.non_blocking(true) records, without its ioctl.
    impl.state_ |= ops::user_set_non_blocking;
    // Made here, never dup()-ed: epoll forgets it when it is closed.
    impl.state_ &= static_cast<ops::state_type>(~ops::possible_dup);
  }
};

void adopt(tcp::socket& socket, const tcp& protocol, int fd, error_code& ec) {
  socket.assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return;
  }
  SocketState::adopted(socket);
  net::note_registered(socket);
}

}  // namespace

void open_nonblocking(tcp::socket& socket, const tcp& protocol, error_code& ec) {
  int fd = ::socket(protocol.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    protocol.protocol());
  if (fd < 0) {
    ec = last_error();
    return;
  }
  adopt(socket, protocol, fd, ec);
  // Registered with epoll before it is connected, it has had nothing to read, and anything it
  // receives raises an edge after this: known empty, as after an EAGAIN, so a relay waits on
  // it without a first read unless epoll has reported something since (net/ready_wait.h).
  if (!ec) note_read(socket, ReadShowed::WouldBlock);
}

void accept_nonblocking(tcp::acceptor& acceptor, tcp::socket& socket, tcp::endpoint& peer,
                        error_code& ec) {
  socklen_t len = static_cast<socklen_t>(peer.capacity());
  int fd;
  do {
    fd = ::accept4(acceptor.native_handle(), peer.data(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    ec = last_error();
    return;
  }
  peer.resize(len);
  adopt(socket, peer.protocol(), fd, ec);
}

}  // namespace snigate::net
