#pragma once
// A readiness wait that costs no system call, for a socket on which a read, write or accept
// has just failed with EAGAIN (or a TCP write stopped short), earlier in the same handler.
//
// asio's async_wait re-arms the descriptor with an EPOLL_CTL_MOD on every wait (Boost 1.74's
// epoll_reactor::start_op without speculation). asio registered it edge-triggered when the
// socket was opened (EPOLLIN|EPOLLERR|EPOLLHUP|EPOLLPRI|EPOLLET), so once an operation would
// have blocked, any new byte, FIN, reset, pending connection or room to write raises a new
// edge: the wait only has to be queued. This starts asio's own kind of reactor operation with
// speculation allowed, the path asio's reads take: the speculative attempt, made inside
// start_op, answers "not yet", so the reactor queues the wait without touching epoll (a write
// wait adds EPOLLOUT once per socket, as asio's writes do), and any event completes it.
//
// What the caller must know: the socket would block now. EAGAIN proves it, and so does a
// poll(2) that shows nothing for it (no POLLIN, POLLERR or POLLHUP), or known_empty() below.
// A short read does not: a FIN or reset that came with those bytes raises no later edge, and
// the next read finds it. A short TCP write does (the kernel then wakes writers when room
// comes back). A socket's operations run on one thread (an io_context run by one thread, as
// the daemon's workers are): an event handled between the EAGAIN and the wait would be lost.
// Completion, cancellation and close are asio's: close() or cancel() completes the wait once
// with operation_aborted; an io_context destroyed first destroys the handler uncalled.
#include <boost/version.hpp>

// The speculative path this relies on is read from Boost 1.74's epoll_reactor.ipp; another
// version may queue differently (and 1.78+ may run io_uring): read it before allowing it here.
static_assert(BOOST_VERSION == 107400,
              "net/ready_wait.h relies on Boost 1.74's epoll_reactor::start_op: check it "
              "against this Boost's boost/asio/detail/impl/epoll_reactor.ipp");

#include <cassert>
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/memory.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#if !defined(BOOST_ASIO_HAS_EPOLL)
#error "net/ready_wait.h needs asio's epoll reactor"
#endif
static_assert(std::is_same_v<boost::asio::detail::reactor, boost::asio::detail::epoll_reactor>);

namespace snigate::net {

namespace ready_wait_detail {

namespace ad = boost::asio::detail;
using SocketImpl = ad::reactive_socket_service_base::base_implementation_type;

SocketImpl& implementation(boost::asio::ip::tcp::socket& socket);
SocketImpl& implementation(boost::asio::ip::tcp::acceptor& acceptor);

// The reactor's perform() of a wait: not yet while start() queues it, ready on every event
// after.
ad::reactor_op::status perform_wait(ad::reactor_op* op);

// Queues `op` on the socket's reactor for reading (ad::reactor::read_op) or writing.
void start(SocketImpl& impl, const boost::asio::any_io_executor& ex, int op_type,
           ad::reactor_op* op, bool is_continuation);

// Blocks of one size, kept for reuse by the thread that frees them: the memory of waits. asio's
// own per-thread cache hands an operation whatever block the last one freed, if big enough,
// and a wait may last as long as its connection idles: idle connections held about 50 B more
// per wait after some traffic (heaptrack; 100 B per connection in the bench's idle row).
template <std::size_t Size>
class BlockCache {
 public:
  static void* take() {
    Local& l = local();
    return l.n > 0 ? l.blocks[--l.n] : ::operator new(Size);
  }
  static void give(void* block) {
    Local& l = local();
    if (l.n < kKeep)
      l.blocks[l.n++] = block;
    else
      ::operator delete(block);
  }

 private:
  static constexpr std::size_t kKeep = 16;
  struct Local {
    void* blocks[kKeep];
    std::size_t n = 0;
    ~Local() {
      while (n > 0) ::operator delete(blocks[--n]);
    }
  };
  static Local& local() {
    thread_local Local l;
    return l;
  }
};

// asio's reactive_wait_op with perform_wait() above: owns the handler and its executor's work
// until the reactor completes, cancels or destroys it. Its memory comes from BlockCache, not
// from the handler's allocator.
template <typename Handler, typename IoExecutor>
class Op : public ad::reactor_op {
 public:
  // BOOST_ASIO_DEFINE_HANDLER_PTR's interface, over BlockCache.
  struct ptr {
    Handler* h;
    Op* v;
    Op* p;
    ~ptr() { reset(); }
    static Op* allocate(Handler&) { return static_cast<Op*>(BlockCache<sizeof(Op)>::take()); }
    void reset() {
      if (p) {
        p->~Op();
        p = nullptr;
      }
      if (v) {
        BlockCache<sizeof(Op)>::give(v);
        v = nullptr;
      }
    }
  };

  Op(Handler& handler, const IoExecutor& io_ex)
      : reactor_op(boost::system::error_code(), &perform_wait, &Op::do_complete),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  static void do_complete(void* owner, ad::operation* base, const boost::system::error_code&,
                          std::size_t) {
    Op* o = static_cast<Op*>(base);
    ptr p = {ad::addressof(o->handler_), o, o};
    ad::handler_work<Handler, IoExecutor> w(std::move(o->work_));
    // The handler may own the memory the operation lives in: copied out before it is freed.
    ad::binder1<Handler, boost::system::error_code> handler(o->handler_, o->ec_);
    p.h = ad::addressof(handler.handler_);
    p.reset();
    if (owner) {
      ad::fenced_block b(ad::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

 private:
  Handler handler_;
  ad::handler_work<Handler, IoExecutor> work_;
};

struct Initiate {
  template <typename Handler, typename Socket>
  void operator()(Handler&& handler, Socket* socket, int op_type) const {
    using H = std::decay_t<Handler>;
    using Executor = typename Socket::executor_type;
    H h(std::forward<Handler>(handler));
    const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(h);
    const Executor io_ex = socket->get_executor();
    using WaitOp = Op<H, Executor>;
    typename WaitOp::ptr p = {ad::addressof(h), WaitOp::ptr::allocate(h), nullptr};
    p.p = new (p.v) WaitOp(h, io_ex);
    start(implementation(*socket), io_ex, op_type, p.p, is_continuation);
    p.v = p.p = nullptr;
  }
};

}  // namespace ready_wait_detail

// Waits until `socket` (a tcp::socket or tcp::acceptor) is readable (wait_read) or writable
// (wait_write), with no system call; only right after an operation on it would have blocked
// (see above). Completion signature void(error_code).
template <typename Socket, typename Token>
auto async_wait_after_would_block(Socket& socket, boost::asio::socket_base::wait_type type,
                                  Token&& token) {
  assert(type == boost::asio::socket_base::wait_read ||
         type == boost::asio::socket_base::wait_write);
  const int op_type = type == boost::asio::socket_base::wait_write
                          ? ready_wait_detail::ad::reactor::write_op
                          : ready_wait_detail::ad::reactor::read_op;
  return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
      ready_wait_detail::Initiate{}, token, &socket, op_type);
}

// Whether a wait may be queued at once without a read first: what a read proved and what
// epoll has reported since. asio keeps per socket a "maybe ready" flag for each kind of
// operation (descriptor_state::try_speculative_), set whenever epoll reports an event for it:
// readable, error or hang-up for reads; error, hang-up or urgent data for the "except" kind,
// which nothing here uses otherwise. An event reported while no wait was queued is lost for a
// later wait, and the read flag is what remembers it. So:
// - a read that would block (EAGAIN) saw everything: both flags are cleared;
// - a read whose TCP_INQ hint says nothing is left (no byte, no FIN: net/tcp_inq.h) saw all
//   but a reset, which queues nothing for the hint to count: it clears the read flag only
//   while no error or hang-up has been reported since the last clear;
// - any other read leaves the socket maybe readable.
// The socket is known empty while both flags are clear; any byte, FIN or reset after that
// raises an edge that completes the wait. A read that proves it empty also drops readability
// that epoll_wait reported before it and the event loop has yet to perform (a posted handler
// can run first): the read took what it announced, and it would only wake the next wait for
// a read that finds nothing. asio's own reads also clear the read flag after a short read
// (they take a short stream read as draining it): a socket read that way is taken as asio
// takes it. Same thread rule as above.
enum class ReadShowed { MaybeMore, NothingLeft, WouldBlock };
void note_read(boost::asio::ip::tcp::socket& socket, ReadShowed showed);
bool known_empty(boost::asio::ip::tcp::socket& socket);
// For a socket registered with epoll in this same handler (opened or accepted): nothing has
// been reported on it, no error or hang-up among it (asio marks every kind maybe ready).
void note_registered(boost::asio::ip::tcp::socket& socket);

}  // namespace snigate::net
