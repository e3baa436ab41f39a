#include "net/ready_wait.h"

#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>

namespace snigate::net::ready_wait_detail {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// basic_socket keeps its implementation in a protected member; a derived class may name it,
// and a pointer to that member reaches it on any tcp::socket (as net/nonblocking_socket.cpp).
struct SocketAccess : tcp::socket {
  static SocketImpl& of(tcp::socket& socket) {
    return (socket.*(&SocketAccess::impl_)).get_implementation();
  }
};

// basic_socket_acceptor keeps it private. An explicit instantiation may name a private member
// ([temp.spec.general]/6); this one hands out the pointer to it.
using AcceptorImpl = ad::io_object_impl<ad::reactive_socket_service<tcp>, asio::any_io_executor>;
using AcceptorImplMember = AcceptorImpl tcp::acceptor::*;
AcceptorImplMember acceptor_impl();
template <AcceptorImplMember M>
struct ExposeAcceptorImpl {
  friend AcceptorImplMember acceptor_impl() { return M; }
};
template struct ExposeAcceptorImpl<&tcp::acceptor::impl_>;

// The wait start() is queuing on this thread: start_op calls perform() for its speculative
// attempt before it queues, and that is the one call to answer "not yet".
thread_local ad::reactor_op* queuing = nullptr;

}  // namespace

SocketImpl& implementation(tcp::socket& socket) { return SocketAccess::of(socket); }

SocketImpl& implementation(tcp::acceptor& acceptor) {
  return (acceptor.*acceptor_impl()).get_implementation();
}

ad::reactor_op::status perform_wait(ad::reactor_op* op) {
  return op == queuing ? ad::reactor_op::not_done : ad::reactor_op::done;
}

void start(SocketImpl& impl, const asio::any_io_executor& ex, int op_type, ad::reactor_op* op,
           bool is_continuation) {
  auto& reactor = asio::use_service<ad::reactor>(asio::query(ex, asio::execution::context));
  // Closed, or never opened: its reactor data is not set then (asio's own waits stop here too).
  if (impl.socket_ == ad::invalid_socket) {
    op->ec_ = asio::error::bad_descriptor;
    return reactor.post_immediate_completion(op, is_continuation);
  }
  queuing = op;
  reactor.start_op(op_type, impl.socket_, impl.reactor_data_, op, is_continuation,
                   /*allow_speculative=*/true);
  queuing = nullptr;
}

}  // namespace snigate::net::ready_wait_detail
