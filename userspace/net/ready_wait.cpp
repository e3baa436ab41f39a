#include "net/ready_wait.h"

#include <sys/epoll.h>

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

// asio's per-socket "maybe ready" flags (see known_empty): private, reached the same way.
using DescriptorState = ad::epoll_reactor::descriptor_state;
using MaybeReady = bool (DescriptorState::*)[ad::epoll_reactor::max_ops];
MaybeReady maybe_ready();
template <MaybeReady M>
struct ExposeMaybeReady {
  friend MaybeReady maybe_ready() { return M; }
};
template struct ExposeMaybeReady<&DescriptorState::try_speculative_>;

// The events epoll_wait has reported for a socket, kept on its state until the event loop
// performs them (it queues the state as an operation: scheduler_operation::task_result_).
using PendingEvents = unsigned int ad::scheduler_operation::*;
PendingEvents pending_events();
template <PendingEvents M>
struct ExposePendingEvents {
  friend PendingEvents pending_events() { return M; }
};
template struct ExposePendingEvents<&ad::scheduler_operation::task_result_>;

// The reactor an open socket is registered with, which its state names: reached so, a wait
// needs no lookup in its context's service registry (a mutex and a list walk, ~1% of a relayed
// connection's instructions in callgrind).
using StateReactor = ad::epoll_reactor* DescriptorState::*;
StateReactor state_reactor();
template <StateReactor M>
struct ExposeStateReactor {
  friend StateReactor state_reactor() { return M; }
};
template struct ExposeStateReactor<&DescriptorState::reactor_>;

DescriptorState* state_of(tcp::socket& socket) { return SocketAccess::of(socket).reactor_data_; }

// The flags of an open socket; null when closed (asio then has no state for it).
bool* flags(tcp::socket& socket) {
  DescriptorState* state = state_of(socket);
  return state ? state->*maybe_ready() : nullptr;
}

// A read has just proved `socket` empty: readability that epoll_wait reported before it, and
// that the event loop has yet to perform, is stale. Dropped, it neither marks the socket
// maybe readable nor wakes the wait queued next for a read that would find nothing. Errors,
// hang-ups and writability stay. Performed already, the value is dead: the next report
// overwrites it (asio adds to it only while the state is queued).
void drop_pending_readable(tcp::socket& socket) {
  // A C-style cast reaches a private base ([expr.cast]/4): the state is an operation.
  auto* op = (ad::scheduler_operation*)state_of(socket);  // NOLINT: see above
  op->*pending_events() &= ~static_cast<unsigned int>(EPOLLIN);
}

constexpr int kRead = ad::epoll_reactor::read_op;
constexpr int kExcept = ad::epoll_reactor::except_op;

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
  // Closed, or never opened: its reactor data is not set then (asio's own waits stop here too).
  if (impl.socket_ == ad::invalid_socket) {
    op->ec_ = asio::error::bad_descriptor;
    auto& reactor = asio::use_service<ad::reactor>(asio::query(ex, asio::execution::context));
    return reactor.post_immediate_completion(op, is_continuation);
  }
  ad::reactor& reactor = *(impl.reactor_data_->*state_reactor());
  queuing = op;
  reactor.start_op(op_type, impl.socket_, impl.reactor_data_, op, is_continuation,
                   /*allow_speculative=*/true);
  queuing = nullptr;
}

}  // namespace snigate::net::ready_wait_detail

namespace snigate::net {

using boost::asio::ip::tcp;
using ready_wait_detail::flags;
using ready_wait_detail::kExcept;
using ready_wait_detail::kRead;

void note_read(tcp::socket& socket, ReadShowed showed) {
  bool* f = flags(socket);
  if (!f) return;
  switch (showed) {
    case ReadShowed::WouldBlock:
      f[kRead] = f[kExcept] = false;
      break;
    // A reset reported before this read is in no hint: it stays maybe readable until a read
    // that would block, or fails, has seen it.
    case ReadShowed::NothingLeft:
      f[kRead] = f[kExcept];
      break;
    case ReadShowed::MaybeMore:
      f[kRead] = true;
      return;
  }
  if (!f[kRead]) ready_wait_detail::drop_pending_readable(socket);
}

bool known_empty(tcp::socket& socket) {
  const bool* f = flags(socket);
  return f && !f[kRead] && !f[kExcept];
}

void note_registered(tcp::socket& socket) {
  if (bool* f = flags(socket)) f[kExcept] = false;
}

}  // namespace snigate::net
