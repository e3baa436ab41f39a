#include "relay_harness.h"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <iostream>
#include <list>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace snigate::vmtest {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;

namespace {

constexpr std::size_t kChunk = 64 * 1024;

// xorshift64* bytes: cheap enough to generate and check gigabytes on both ends.
class Stream {
 public:
  explicit Stream(std::uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  void fill(char* p, std::size_t n) {
    while (n > 0) {
      if (used_ == 8) {
        s_ ^= s_ >> 12;
        s_ ^= s_ << 25;
        s_ ^= s_ >> 27;
        word_ = s_ * 0x2545F4914F6CDD1Dull;
        used_ = 0;
      }
      std::size_t k = std::min<std::size_t>(8 - used_, n);
      std::memcpy(p, reinterpret_cast<const char*>(&word_) + used_, k);
      used_ += k;
      p += k;
      n -= k;
    }
  }

 private:
  std::uint64_t s_;
  std::uint64_t word_ = 0;
  std::size_t used_ = 8;
};

std::uint64_t c2u_seed(std::uint64_t id) { return id * 2 + 1; }
// A greeting is sent before the backend knows the connection: its stream cannot depend on it.
std::uint64_t u2c_seed(std::uint64_t id, const Plan& p) {
  return p.backend_greeting ? 2 : id * 2 + 2;
}

awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  error_code ec;
  co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
}

// Runs both coroutines concurrently and returns when both have finished.
awaitable<void> both(awaitable<void> a, awaitable<void> b) {
  auto ex = co_await asio::this_coro::executor;
  auto left = std::make_shared<int>(2);
  auto wake = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
  auto done = [left, wake](std::exception_ptr) {
    if (--*left == 0) wake->cancel();
  };
  asio::co_spawn(ex, std::move(a), done);
  asio::co_spawn(ex, std::move(b), done);
  error_code ec;
  while (*left > 0) co_await wake->async_wait(asio::redirect_error(use_awaitable, ec));
}

awaitable<void> send(tcp::socket& s, std::uint64_t size, std::uint64_t seed, std::uint64_t* sent,
                     std::uint64_t skip = 0, error_code* error = nullptr) {
  Stream stream(seed);
  std::vector<char> buf(kChunk);
  for (std::uint64_t left = skip; left > 0;) {  // bytes already sent as a greeting
    std::size_t n = std::min<std::uint64_t>(left, kChunk);
    stream.fill(buf.data(), n);
    left -= n;
  }
  for (std::uint64_t left = size - skip; left > 0;) {
    std::size_t n = std::min<std::uint64_t>(left, kChunk);
    stream.fill(buf.data(), n);
    error_code ec;
    std::size_t w = co_await asio::async_write(s, asio::buffer(buf.data(), n),
                                               asio::redirect_error(use_awaitable, ec));
    *sent += w;
    if (ec) {
      if (error) *error = ec;
      co_return;
    }
    left -= n;
  }
}

void finish_send(tcp::socket& s, Plan::End end) {
  error_code ignored;
  if (end == Plan::End::Hold) return;
  if (end == Plan::End::Reset) {
    s.set_option(tcp::socket::linger(true, 0), ignored);
    s.close(ignored);
  } else {
    s.shutdown(tcp::socket::shutdown_send, ignored);
  }
}

struct Received {
  std::uint64_t bytes = 0;
  bool intact = true;
  std::uint64_t first_bad = UINT64_MAX;
  bool eof = false;
  error_code error;

  // Counts `n` bytes just read and compares them with what the stream says comes next.
  void check(Stream& stream, const char* got, std::size_t n, std::vector<char>& want) {
    stream.fill(want.data(), n);
    if (intact && std::memcmp(got, want.data(), n) != 0) {
      intact = false;
      first_bad = bytes + static_cast<std::uint64_t>(std::mismatch(got, got + n, want.data()).first - got);
    }
    bytes += n;
  }
};

// Reads until EOF, an error or `stop_after` bytes, checking every byte against the stream.
awaitable<void> receive(tcp::socket& s, Stream& stream, std::uint64_t rate, Received* r,
                        std::uint64_t stop_after = UINT64_MAX) {
  std::vector<char> buf(kChunk), want(kChunk);
  const auto start = std::chrono::steady_clock::now();
  while (r->bytes < stop_after) {
    std::size_t room = std::min<std::uint64_t>(kChunk, stop_after - r->bytes);
    if (rate) room = std::min<std::size_t>(room, 16 * 1024);
    error_code ec;
    std::size_t n =
        co_await s.async_read_some(asio::buffer(buf.data(), room), asio::redirect_error(use_awaitable, ec));
    if (n > 0) r->check(stream, buf.data(), n, want);
    if (ec == asio::error::eof) {
      r->eof = true;
      co_return;
    }
    if (ec) {
      r->error = ec;
      co_return;
    }
    if (rate) {
      auto due = start + std::chrono::microseconds(r->bytes * 1000000 / rate);
      if (due > std::chrono::steady_clock::now()) co_await sleep_for(due - std::chrono::steady_clock::now());
    }
  }
}

// Reads like receive() and writes each chunk back before the next read; FIN after EOF.
awaitable<void> echo(tcp::socket& s, Stream& stream, Received* r, Outcome* o) {
  std::vector<char> buf(kChunk), want(kChunk);
  for (;;) {
    error_code ec;
    std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
    if (n > 0) {
      r->check(stream, buf.data(), n, want);
      error_code wec;
      o->backend_sent += co_await asio::async_write(s, asio::buffer(buf.data(), n),
                                                    asio::redirect_error(use_awaitable, wec));
      if (wec) {
        o->backend_send_error = wec;
        co_return;
      }
    }
    if (ec == asio::error::eof) {
      r->eof = true;
      s.shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
    if (ec) {
      r->error = ec;
      co_return;
    }
  }
}

}  // namespace

struct Harness::State {
  std::shared_ptr<relay::Relay> relay;
  relay::Options options;
  std::chrono::milliseconds handoff_delay{0};
  bool external_edge = false;  // set before any run, read-only afterwards
  std::string preamble;
  std::string client_ns, edge_ns;
  tcp::endpoint edge4, edge6, backend4, backend6;
  std::unique_ptr<tcp::acceptor> edge_acc4, edge_acc6, backend_acc4, backend_acc6;

  std::mutex mutex;
  std::vector<EdgeRecord> records;
  // The run in progress; coroutines hold their own references, so a run that timed out
  // cannot leave them writing into freed memory.
  std::shared_ptr<const std::vector<Plan>> plans;
  std::shared_ptr<std::vector<Outcome>> outcomes;
  std::atomic<std::size_t> clients_done{0};
  struct Live {
    tcp::socket client, upstream;
    relay::Counters counters;
    explicit Live(asio::io_context& io) : client(io), upstream(io) {}
  };
  std::list<Live*> live;  // edge thread only

  std::atomic<std::size_t> peers_done{0};
};

namespace {

tcp::acceptor listen_in(asio::io_context& io, const std::string& ns, const std::string& addr) {
  tcp::acceptor acc(io);
  in_netns(ns, [&] {
    tcp::endpoint ep(asio::ip::make_address(addr), 0);
    acc.open(ep.protocol());
    acc.set_option(tcp::acceptor::reuse_address(true));
    acc.bind(ep);
    acc.listen(1024);
  });
  return acc;
}

awaitable<void> edge_connection(std::shared_ptr<Harness::State> st, tcp::socket client, bool v6,
                                asio::io_context& io) {
  auto* live = new Harness::State::Live(io);
  live->client = std::move(client);
  st->live.push_back(live);
  EdgeRecord rec;
  error_code ec;
  in_netns(st->edge_ns, [&] { live->upstream.open(v6 ? tcp::v6() : tcp::v4(), ec); });
  if (!ec)
    co_await live->upstream.async_connect(v6 ? st->backend6 : st->backend4,
                                          asio::redirect_error(use_awaitable, ec));
  if (ec) {
    rec.result = {.end = relay::End::Error, .detail = "edge connect: " + ec.message()};
  } else {
    if (st->handoff_delay.count() > 0) co_await sleep_for(st->handoff_delay);
    rec.result = co_await st->relay->run(live->client, live->upstream, st->options, live->counters);
  }
  rec.c2u = live->counters.client_to_upstream;
  rec.u2c = live->counters.upstream_to_client;
  rec.mode = live->counters.mode;
  live->client.close(ec);
  live->upstream.close(ec);
  st->live.remove(live);
  delete live;
  std::lock_guard lock(st->mutex);
  st->records.push_back(rec);
}

awaitable<void> edge_accept(std::shared_ptr<Harness::State> st, tcp::acceptor& acc, bool v6,
                            asio::io_context& io) {
  for (;;) {
    error_code ec;
    tcp::socket s = co_await acc.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) continue;
    asio::co_spawn(io, edge_connection(st, std::move(s), v6, io), asio::detached);
  }
}

// (Free functions, not lambdas: GCC 12 crashes on coroutine lambdas here.)
awaitable<void> backend_reader(tcp::socket& s, const Plan& p, Stream& stream, Received* r) {
  if (p.backend_read_delay_ms) co_await sleep_for(std::chrono::milliseconds(p.backend_read_delay_ms));
  if (p.backend_reads) {
    co_await receive(s, stream, 0, r);
  } else {
    // Keep the socket open, unread, until the edge gives up on it (FIN or RST): closing it
    // with unread bytes would reset the connection, which is not what a stalled reader does.
    for (;;) {
      pollfd pfd{s.native_handle(), POLLRDHUP, 0};
      if (::poll(&pfd, 1, 0) != 0) break;
      co_await sleep_for(std::chrono::milliseconds(20));
    }
  }
}

awaitable<void> backend_writer(tcp::socket& s, const Plan& p, std::uint64_t id, Outcome* o,
                               std::uint64_t greeted) {
  co_await send(s, p.u2c, u2c_seed(id, p), &o->backend_sent, greeted, &o->backend_send_error);
  finish_send(s, p.backend_end);
}

awaitable<void> client_reader(tcp::socket& s, const Plan& p, Stream& stream, Received* r) {
  co_await receive(s, stream, p.client_read_rate, r);
}

awaitable<void> client_writer(tcp::socket& s, const Plan& p, std::uint64_t id, Outcome* o) {
  co_await send(s, p.c2u, c2u_seed(id), &o->client_sent, 0, &o->client_send_error);
  if (!p.client_fin_after_eof) finish_send(s, p.client_end);
}

// Plan::client_message: each message is sent once the one before has come back, then the FIN
// and the echo's EOF.
awaitable<void> client_turns(tcp::socket& s, const Plan& p, std::uint64_t id, Outcome* o,
                             Stream& echoed, Received* r) {
  Stream stream(c2u_seed(id));
  std::vector<char> buf(std::min<std::uint64_t>(p.client_message, kChunk));
  for (std::uint64_t at = 0; at < p.c2u && !r->eof && !r->error;) {
    const std::size_t n = std::min<std::uint64_t>(buf.size(), p.c2u - at);
    stream.fill(buf.data(), n);
    error_code ec;
    o->client_sent += co_await asio::async_write(s, asio::buffer(buf.data(), n),
                                                 asio::redirect_error(use_awaitable, ec));
    if (ec) {
      o->client_send_error = ec;
      break;
    }
    at += n;
    co_await receive(s, echoed, 0, r, at);
  }
  finish_send(s, p.client_end);
  co_await receive(s, echoed, 0, r);
}

awaitable<void> backend_connection(std::shared_ptr<Harness::State> st, tcp::socket s) {
  std::shared_ptr<const std::vector<Plan>> plans;
  std::shared_ptr<std::vector<Outcome>> outcomes;
  {
    std::lock_guard lock(st->mutex);
    plans = st->plans;
    outcomes = st->outcomes;
  }
  if (!plans) co_return;
  std::uint64_t id = 0;
  std::uint64_t greeted = 0;
  error_code ec;
  const Plan* greeting_plan = nullptr;
  if (!plans->empty() && (*plans)[0].backend_greeting) {
    greeting_plan = &(*plans)[0];
    co_await send(s, greeting_plan->backend_greeting, u2c_seed(0, *greeting_plan), &greeted);
  }
  std::string preamble(st->preamble.size(), '\0');
  if (!preamble.empty())
    co_await asio::async_read(s, asio::buffer(preamble), asio::redirect_error(use_awaitable, ec));
  if (ec || preamble != st->preamble) co_return;
  co_await asio::async_read(s, asio::buffer(&id, sizeof(id)), asio::redirect_error(use_awaitable, ec));
  if (ec || id >= plans->size()) co_return;
  const Plan& p = (*plans)[id];
  Outcome& o = (*outcomes)[id];
  o.backend_sent = greeted;
  Received r;
  Stream stream(c2u_seed(id));
  if (p.backend_echoes) {
    co_await echo(s, stream, &r, &o);
  } else if (p.backend_waits_for_eof) {
    co_await backend_reader(s, p, stream, &r);
    co_await backend_writer(s, p, id, &o, greeted);
  } else {
    co_await both(backend_reader(s, p, stream, &r), backend_writer(s, p, id, &o, greeted));
  }
  o.backend_received = r.bytes;
  o.backend_intact = r.intact;
  o.backend_first_bad = r.first_bad;
  o.backend_eof = r.eof;
  o.backend_error = r.error;
  o.backend_done = true;
  ++st->peers_done;
}

awaitable<void> backend_accept(std::shared_ptr<Harness::State> st, tcp::acceptor& acc) {
  auto ex = co_await asio::this_coro::executor;
  for (;;) {
    error_code ec;
    tcp::socket s = co_await acc.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) continue;
    asio::co_spawn(ex, backend_connection(st, std::move(s)), asio::detached);
  }
}

awaitable<void> client_connection(std::shared_ptr<Harness::State> st,
                                  std::shared_ptr<const std::vector<Plan>> plans,
                                  std::shared_ptr<std::vector<Outcome>> outcomes, std::uint64_t id,
                                  asio::io_context& io) {
  const Plan& p = (*plans)[id];
  Outcome& o = (*outcomes)[id];
  tcp::socket s(io);
  error_code ec;
  in_netns(st->client_ns, [&] { s.open(p.v6 ? tcp::v6() : tcp::v4(), ec); });
  if (!ec)
    co_await s.async_connect(p.v6 ? st->edge6 : st->edge4, asio::redirect_error(use_awaitable, ec));
  Received r;
  if (ec) {
    r.error = ec;
  } else {
    Stream stream(p.backend_echoes ? c2u_seed(id) : u2c_seed(id, p));
    // A greeting is the head of the backend's stream: read it before sending anything.
    if (p.backend_greeting)
      co_await receive(s, stream, p.client_read_rate, &r, p.backend_greeting);
    // The id goes first in every plan (after the preamble): the backend learns its plan from it.
    if (!st->preamble.empty())
      co_await asio::async_write(s, asio::buffer(st->preamble), asio::redirect_error(use_awaitable, ec));
    if (!ec)
      co_await asio::async_write(s, asio::buffer(&id, sizeof(id)), asio::redirect_error(use_awaitable, ec));
    if (p.client_message) {
      co_await client_turns(s, p, id, &o, stream, &r);
    } else if (p.client_waits_for_eof) {
      co_await client_reader(s, p, stream, &r);
      co_await client_writer(s, p, id, &o);
    } else {
      co_await both(client_reader(s, p, stream, &r), client_writer(s, p, id, &o));
    }
    if (p.client_fin_after_eof) finish_send(s, p.client_end);
  }
  o.client_received = r.bytes;
  o.client_intact = r.intact;
  o.client_first_bad = r.first_bad;
  o.client_eof = r.eof;
  o.client_error = r.error;
  o.client_done = true;
  ++st->clients_done;
  ++st->peers_done;
}

}  // namespace

Harness::Harness(std::shared_ptr<relay::Relay> relay, relay::Options options, Link link)
    : topology_("sg-relay", 4), state_(std::make_shared<State>()) {
  state_->relay = std::move(relay);
  state_->options = options;
  auto& t = topology_;
  const bool lo = link == Link::Loopback;
  state_->client_ns = lo ? t.edge() : t.client();
  state_->edge_ns = t.edge();
  const std::string& backend_ns = lo ? t.edge() : t.backend();
  state_->external_edge = !state_->relay;
  if (state_->relay) {
    state_->edge_acc4 = std::make_unique<tcp::acceptor>(
        listen_in(edge_io_, t.edge(), lo ? "127.0.0.1" : t.v4().edge_front));
    state_->edge_acc6 = std::make_unique<tcp::acceptor>(
        listen_in(edge_io_, t.edge(), lo ? "::1" : t.v6().edge_front));
    state_->edge4 = state_->edge_acc4->local_endpoint();
    state_->edge6 = state_->edge_acc6->local_endpoint();
    asio::co_spawn(edge_io_, edge_accept(state_, *state_->edge_acc4, false, edge_io_), asio::detached);
    asio::co_spawn(edge_io_, edge_accept(state_, *state_->edge_acc6, true, edge_io_), asio::detached);
  }
  state_->backend_acc4 = std::make_unique<tcp::acceptor>(
      listen_in(peers_io_, backend_ns, lo ? "127.0.0.1" : t.v4().backend));
  state_->backend_acc6 = std::make_unique<tcp::acceptor>(
      listen_in(peers_io_, backend_ns, lo ? "::1" : t.v6().backend));
  state_->backend4 = state_->backend_acc4->local_endpoint();
  state_->backend6 = state_->backend_acc6->local_endpoint();
  asio::co_spawn(peers_io_, backend_accept(state_, *state_->backend_acc4), asio::detached);
  asio::co_spawn(peers_io_, backend_accept(state_, *state_->backend_acc6), asio::detached);
  edge_thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(edge_io_);
    edge_io_.run();
  });
  peers_thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(peers_io_);
    peers_io_.run();
  });
}

Harness::~Harness() {
  abort_live();
  edge_io_.stop();
  peers_io_.stop();
  edge_thread_.join();
  peers_thread_.join();
  // The acceptors belong to the io_contexts' services, which die with them, before state_.
  state_->edge_acc4.reset();
  state_->edge_acc6.reset();
  state_->backend_acc4.reset();
  state_->backend_acc6.reset();
}

void Harness::set_handoff_delay(std::chrono::milliseconds delay) {
  asio::post(edge_io_, [st = state_, delay] { st->handoff_delay = delay; });
}

std::vector<Outcome> Harness::run(const std::vector<Plan>& plans_in, std::size_t concurrency,
                                  std::chrono::seconds limit) {
  auto plans = std::make_shared<const std::vector<Plan>>(plans_in);
  auto outcomes = std::make_shared<std::vector<Outcome>>(plans->size());
  const std::size_t records_before = edge_records().size();
  {
    std::lock_guard lock(state_->mutex);
    state_->plans = plans;
    state_->outcomes = outcomes;
  }
  state_->peers_done = 0;
  state_->clients_done = 0;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::size_t next = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    while (next < plans->size() && next - state_->clients_done < concurrency) {
      asio::co_spawn(peers_io_, client_connection(state_, plans, outcomes, next, peers_io_),
                     asio::detached);
      ++next;
    }
    if (next == plans->size() &&
        (state_->external_edge || edge_records().size() - records_before >= plans->size()) &&
        state_->peers_done >= 2 * plans->size())
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  timed_out_ = std::chrono::steady_clock::now() >= deadline;
  const std::vector<std::string> live_at_deadline =
      timed_out_ ? describe_live() : std::vector<std::string>{};
  if (timed_out_) {
    abort_live();
    // A relay may take a timer tick to notice; give it a bounded moment.
    for (int i = 0; i < 500 && live_connections() > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Outcomes are written on the peers' thread: copy them there.
  std::promise<std::vector<Outcome>> copy;
  asio::post(peers_io_, [&] {
    std::lock_guard lock(state_->mutex);
    state_->plans.reset();
    state_->outcomes.reset();
    copy.set_value(*outcomes);
  });
  auto out = copy.get_future().get();
  if (timed_out_) report_timeout(out, next, live_at_deadline);
  return out;
}

// Who was still waiting when a run timed out: a test's failure then says which side hung.
// (A peer records what it received when it finishes; until then only what it sent is known.)
void Harness::report_timeout(const std::vector<Outcome>& out, std::size_t started,
                             const std::vector<std::string>& live) {
  std::cerr << "harness: timed out with " << started << " of " << out.size() << " clients started";
  // An outside edge (snigated) keeps its connections to itself: no count to give.
  if (state_->external_edge) {
    std::cerr << "\n";
  } else {
    std::cerr << " and " << live.size() << " connections live at the edge\n";
    for (const auto& l : live) std::cerr << "  live at the edge: " << l << "\n";
  }
  auto side = [](bool done, std::uint64_t sent, std::uint64_t received, const error_code& ec) {
    std::ostringstream s;
    s << sent << " B sent";
    if (done)
      s << ", done with " << received << " B received (" << ec.message() << ")";
    else
      s << ", waiting";
    return s.str();
  };
  for (std::size_t i = 0; i < out.size(); ++i) {
    const Outcome& o = out[i];
    if (o.client_done && o.backend_done) continue;
    std::cerr << "  plan " << i << ": client "
              << side(o.client_done, o.client_sent, o.client_received, o.client_error)
              << "; backend "
              << side(o.backend_done, o.backend_sent, o.backend_received, o.backend_error)
              << "\n";
  }
}

void Harness::set_external_edge(const tcp::endpoint& v4, const tcp::endpoint& v6,
                                std::string preamble) {
  state_->edge4 = v4;
  state_->edge6 = v6;
  state_->preamble = std::move(preamble);
}

tcp::endpoint Harness::backend(bool v6) const { return v6 ? state_->backend6 : state_->backend4; }

std::vector<EdgeRecord> Harness::edge_records() {
  std::lock_guard lock(state_->mutex);
  return state_->records;
}

void Harness::abort_live() {
  std::promise<void> done;
  asio::post(edge_io_, [&] {
    error_code ignored;
    for (auto* l : state_->live) {
      l->client.close(ignored);
      l->upstream.close(ignored);
    }
    done.set_value();
  });
  done.get_future().wait();
}

std::vector<std::string> Harness::describe_live() {
  std::promise<std::vector<std::string>> lines;
  asio::post(edge_io_, [&] {
    std::vector<std::string> v;
    for (auto* l : state_->live) {
      std::ostringstream s;
      s << "relay " << relay::to_string(l->counters.mode.load()) << ", "
        << l->counters.client_to_upstream << " B to the backend, "
        << l->counters.upstream_to_client << " B to the client";
      v.push_back(s.str());
    }
    lines.set_value(std::move(v));
  });
  auto v = lines.get_future().get();
  // Where the bytes wait: each namespace's TCP sockets, their queues and windows.
  for (const auto* ns : {&topology_.client(), &topology_.edge(), &topology_.backend()}) {
    std::cerr << "harness: TCP sockets in " << *ns << std::endl;
    std::system(("ip netns exec " + *ns + " ss -tnmi >&2 2>/dev/null").c_str());
  }
  return v;
}

std::size_t Harness::live_connections() {
  std::promise<std::size_t> n;
  asio::post(edge_io_, [&] { n.set_value(state_->live.size()); });
  return n.get_future().get();
}

std::size_t open_fds(bool pipes) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    if ((std::filesystem::read_symlink(it->path(), ec).string().rfind("pipe:", 0) == 0) == pipes)
      ++n;
  return n;
}

}  // namespace snigate::vmtest
