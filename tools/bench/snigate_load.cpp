// snigate-load: loopback load for bench.sh. One sink (the backend) and the client measurements
// that talk to either the sink directly or a relay in front of it (snigated, nginx, HAProxy).
// Every connection starts with a TLS ClientHello record, the first bytes any SNI router needs;
// the first label of its server name tells the sink what to do:
//   discard.bench.test  read and drop everything      (upload throughput)
//   echo.bench.test     write back every byte read    (two-way throughput, latency, conns/s)
//   idle.bench.test     hold the connection           (memory per idle connection)
//   chat.bench.test     echo, with no buffer per conn (exchanges before an idle connection holds)
// Each measurement prints one line of key=value pairs.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>  // Boost 1.74 awaitable.hpp uses std::exchange without including it
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "parser/tls_client_hello.h"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---- ClientHello -----------------------------------------------------------------------

void put16(std::string& out, std::size_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

// A minimal valid TLS 1.2 ClientHello record (RFC 5246 7.4.1.2, RFC 6066 3) naming `host`:
// enough for SNI routers (snigated, nginx ssl_preread, HAProxy req.ssl_sni), which only read it.
std::string client_hello(std::string_view host) {
  std::string sni;  // server_name extension: type 0, list of one host_name entry
  put16(sni, 0);
  put16(sni, host.size() + 5);
  put16(sni, host.size() + 3);
  sni.push_back(0);  // host_name
  put16(sni, host.size());
  sni += host;
  std::string body;
  put16(body, 0x0303);              // client_version TLS 1.2
  body.append(32, '\x5a');          // random
  body.push_back(0);                // no session id
  // Cipher suites TLS_AES_128_GCM_SHA256 and TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256; then
  // compression methods: null only.
  body += std::string("\x00\x04\x13\x01\xc0\x2f", 6);
  body += std::string("\x01\x00", 2);
  put16(body, sni.size());
  body += sni;
  std::string record("\x16\x03\x01", 3);  // handshake record, TLS 1.0 on the record layer as usual
  put16(record, body.size() + 4);
  record.push_back(1);  // client_hello
  record.push_back(0);
  put16(record, body.size());
  return record + body;
}

// ---- sink ------------------------------------------------------------------------------

enum class Behaviour { Discard, Echo, Idle, Chat };

// The sink's behaviour named by the first ClientHello record, or nothing for an unknown name.
std::optional<Behaviour> read_behaviour(std::span<const std::uint8_t> record) {
  auto pre = snigate::parser::parse_tls_preread(record);
  if (pre.status != snigate::parser::Status::Done) return std::nullopt;
  const std::string& sni = pre.hello.sni;
  if (sni == "discard.bench.test") return Behaviour::Discard;
  if (sni == "echo.bench.test") return Behaviour::Echo;
  if (sni == "idle.bench.test") return Behaviour::Idle;
  if (sni == "chat.bench.test") return Behaviour::Chat;
  return std::nullopt;
}

// An echo connection's 256 KiB buffer, taken from the (single-threaded) sink's spares and
// given back when the connection ends. A fresh zero-filled vector per connection cost the sink
// a 256 KiB memset, and page faults whenever malloc had trimmed the heap between connections:
// about 7 us more per connection in one column's sink than in another's under the cps rows,
// depending only on that sink's heap.
class EchoBuffer {
 public:
  EchoBuffer() {
    if (spares_.empty()) {
      data_ = std::make_unique_for_overwrite<char[]>(kSize);
    } else {
      data_ = std::move(spares_.back());
      spares_.pop_back();
    }
  }
  ~EchoBuffer() { spares_.push_back(std::move(data_)); }
  EchoBuffer(const EchoBuffer&) = delete;
  EchoBuffer& operator=(const EchoBuffer&) = delete;
  asio::mutable_buffer buffer() const { return asio::buffer(data_.get(), kSize); }

 private:
  static constexpr std::size_t kSize = 256 * 1024;
  static inline std::vector<std::unique_ptr<char[]>> spares_;
  std::unique_ptr<char[]> data_;
};

asio::awaitable<void> serve(tcp::socket s) {
  boost::system::error_code ec;
  auto on_error = asio::redirect_error(asio::use_awaitable, ec);
  // Exactly the hello record (header, then its length), so no byte after it is consumed here.
  std::vector<std::uint8_t> record(5);
  co_await asio::async_read(s, asio::buffer(record), on_error);
  if (ec) co_return;
  const std::size_t length = static_cast<std::size_t>(record[3] << 8 | record[4]);
  record.resize(5 + length);
  co_await asio::async_read(s, asio::buffer(record.data() + 5, length), on_error);
  if (ec) co_return;
  const auto behaviour = read_behaviour(record);
  std::vector<std::uint8_t>().swap(record);  // an idle connection keeps no buffer
  if (!behaviour) {
    std::fprintf(stderr, "sink: first record is not a ClientHello for a *.bench.test mode\n");
    co_return;
  }
  if (behaviour == Behaviour::Echo) {
    // Its own buffer: it is in use across the write's suspension.
    EchoBuffer data;
    for (;;) {
      std::size_t n = co_await s.async_read_some(data.buffer(), on_error);
      if (ec) co_return;
      co_await asio::async_write(s, asio::buffer(data.buffer(), n), on_error);
      if (ec) co_return;
    }
  }
  // Discard, idle (the same; no data comes) and chat. One read buffer for the whole
  // (single-threaded) sink, used only once data is there, so an idle connection costs the sink
  // no more than its socket and coroutine: the "direct" column of the idle-memory row is then a
  // minimal server's cost. Chat echoes small requests (the idle row's exchanges) from that
  // buffer; its answer fits the socket's send buffer, so the write does not wait.
  static std::vector<char> data(256 * 1024);
  for (;;) {
    co_await s.async_wait(tcp::socket::wait_read, on_error);
    if (ec) co_return;
    const std::size_t n = s.read_some(asio::buffer(data), ec);
    if (ec) co_return;
    if (behaviour == Behaviour::Chat) asio::write(s, asio::buffer(data, n), ec);
    if (ec) co_return;
  }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
  for (;;) {
    tcp::socket s = co_await acceptor.async_accept(asio::use_awaitable);
    s.set_option(tcp::no_delay(true));
    asio::co_spawn(acceptor.get_executor(), serve(std::move(s)), asio::detached);
  }
}

// Listens on `addresses` consecutive IPv4 addresses from `ip`, all on one port: a relay that
// balances over them has that many ephemeral port spaces towards the sink (see run_cps).
int run_sink(const std::string& ip, unsigned addresses) {
  asio::io_context io(1);
  const auto first = asio::ip::make_address_v4(ip);
  std::vector<tcp::acceptor> acceptors;
  acceptors.emplace_back(io, tcp::endpoint{first, 0});
  const std::uint16_t port = acceptors.front().local_endpoint().port();
  for (unsigned k = 1; k < addresses; ++k)
    acceptors.emplace_back(io, tcp::endpoint{asio::ip::address_v4(first.to_uint() + k), port});
  std::printf("sink port=%u\n", port);
  std::fflush(stdout);
  for (auto& a : acceptors) asio::co_spawn(io, accept_loop(a), asio::detached);
  io.run();
  return 0;
}

// ---- clients ---------------------------------------------------------------------------

struct Target {
  std::string ip;
  std::uint16_t port = 0;
};

// A connected socket that has sent the ClientHello naming `behaviour`, or -1. With `source`
// (an address on loopback), the connection comes from there; its port is still picked by
// connect(2), against the whole 4-tuple (IP_BIND_ADDRESS_NO_PORT).
int dial(const Target& t, std::string_view behaviour, const char* source = nullptr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (source) {
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    inet_pton(AF_INET, source, &from.sin_addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
      close(fd);
      return -1;
    }
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(t.port);
  inet_pton(AF_INET, t.ip.c_str(), &sa.sin_addr);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  const std::string hello = client_hello(std::string(behaviour) + ".bench.test");
  if (send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(hello.size())) {
    close(fd);
    return -1;
  }
  return fd;
}

// Whole-machine busy CPU time, in seconds, from /proc/stat (kernel work included).
double busy_cpu_seconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
  in >> cpu >> user >> nice >> sys >> idle >> iowait >> irq >> softirq >> steal;
  return static_cast<double>(user + nice + sys + irq + softirq + steal) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

int run_throughput(const Target& t, unsigned conns, double seconds) {
  std::atomic<std::uint64_t> total{0};
  std::atomic<unsigned> failed{0};
  std::atomic<std::int64_t> drain_us{0};  // longest wait from the last send to the sink's EOF
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  const double cpu0 = busy_cpu_seconds();
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < conns; ++i)
    threads.emplace_back([&] {
      int fd = dial(t, "discard");
      if (fd < 0) return void(++failed);
      std::vector<char> buf(256 * 1024, 'x');
      std::uint64_t sent = 0;
      while (Clock::now() < deadline) {
        ssize_t n = send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
        if (n <= 0) {
          ++failed;
          break;
        }
        sent += static_cast<std::uint64_t>(n);
      }
      // Sent is not delivered: a relay may still hold bytes in its queues. The sink closes
      // once it has read our FIN, so the clock stops only when every byte has arrived.
      const auto sent_all = Clock::now();
      shutdown(fd, SHUT_WR);
      char sink_eof;
      if (recv(fd, &sink_eof, 1, 0) != 0) ++failed;
      const auto us =
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent_all).count();
      for (auto prev = drain_us.load(); us > prev && !drain_us.compare_exchange_weak(prev, us);) {
      }
      close(fd);
      total += sent;
    });
  for (auto& th : threads) th.join();
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = busy_cpu_seconds() - cpu0;
  const double gib = static_cast<double>(total) / (1ull << 30);
  std::printf("throughput conns=%u gbit_s=%.3f cpu_s_per_gib=%.3f drain_ms=%.1f failed=%u\n",
              conns, static_cast<double>(total) * 8 / took / 1e9, gib > 0 ? cpu / gib : 0.0,
              static_cast<double>(drain_us.load()) / 1000, failed.load());
  return failed ? 1 : 0;
}

// Two-way bulk: per connection one thread writes for `seconds` and another reads the sink's
// echo back; counts bytes once they are back, and fails a connection whose echo falls short.
int run_echo(const Target& t, unsigned conns, double seconds) {
  std::atomic<std::uint64_t> total{0};
  std::atomic<unsigned> failed{0};
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  const double cpu0 = busy_cpu_seconds();
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < conns; ++i)
    threads.emplace_back([&] {
      int fd = dial(t, "echo");
      if (fd < 0) return void(++failed);
      std::uint64_t sent = 0, received = 0;
      std::thread reader([&] {
        std::vector<char> buf(256 * 1024);
        // Until the sink closes after our FIN: every echoed byte has arrived by then.
        for (ssize_t n; (n = recv(fd, buf.data(), buf.size(), 0)) > 0;)
          received += static_cast<std::uint64_t>(n);
      });
      std::vector<char> buf(256 * 1024, 'x');
      while (Clock::now() < deadline) {
        ssize_t n = send(fd, buf.data(), buf.size(), MSG_NOSIGNAL);
        if (n <= 0) {
          ++failed;
          break;
        }
        sent += static_cast<std::uint64_t>(n);
      }
      shutdown(fd, SHUT_WR);
      reader.join();
      close(fd);
      if (received != sent) {
        std::fprintf(stderr, "echo: sent %llu bytes, %llu came back\n",
                     static_cast<unsigned long long>(sent), static_cast<unsigned long long>(received));
        ++failed;
      }
      total += received;
    });
  for (auto& th : threads) th.join();
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = busy_cpu_seconds() - cpu0;
  const double gib = static_cast<double>(total) / (1ull << 30);
  std::printf("echo conns=%u gbit_s=%.3f cpu_s_per_gib=%.3f failed=%u\n", conns,
              static_cast<double>(total) * 8 / took / 1e9, gib > 0 ? cpu / gib : 0.0, failed.load());
  return failed ? 1 : 0;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// Sends `buf` to an echo peer and reads its echo back into it; false when the echo did not
// come back whole.
bool round_trip(int fd, std::span<char> buf) {
  if (send(fd, buf.data(), buf.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(buf.size()))
    return false;
  for (std::size_t got = 0; got < buf.size();) {
    ssize_t n = recv(fd, buf.data() + got, buf.size() - got, 0);
    if (n <= 0) return false;
    got += static_cast<std::size_t>(n);
  }
  return true;
}

int run_latency(const Target& t, unsigned count, std::size_t size) {
  int fd = dial(t, "echo");
  if (fd < 0) return std::printf("latency failed=connect\n"), 1;
  std::vector<char> buf(size, 'q');
  std::vector<double> us;
  us.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    auto t0 = Clock::now();
    if (!round_trip(fd, buf)) break;
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  close(fd);
  const std::size_t done = us.size();
  std::printf("latency requests=%zu size=%zu p50_us=%.1f p99_us=%.1f\n", done, size,
              percentile(us, 0.50), percentile(us, 0.99));
  return done == count ? 0 : 1;
}

// Short connections: each connects, sends its ClientHello and one byte, reads the byte's echo
// and closes, by FIN or (`rst`) by a reset, as issue 17's clients did. Each thread cycles its
// connections through 16 source addresses of 127.0.4.0/24: from one address, the client's
// ends in TIME_WAIT (after a FIN) would hold every port towards the target and cap all
// columns alike at about half the ephemeral range per second (tcp_tw_reuse waits 1 s).
int run_cps(const Target& t, unsigned parallel, double seconds, bool rst) {
  std::atomic<std::uint64_t> done{0}, failed{0};
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  const auto start = Clock::now();
  const bool loopback = t.ip.starts_with("127.");
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < parallel; ++i)
    threads.emplace_back([&, i] {
      std::array<std::string, 16> sources;
      for (unsigned k = 0; k < sources.size(); ++k)
        sources[k] = "127.0.4." + std::to_string(1 + (i * 16 + k) % 250);
      unsigned n = 0;
      while (Clock::now() < deadline) {
        const std::string& source = sources[n++ % sources.size()];
        int fd = dial(t, "echo", loopback ? source.c_str() : nullptr);
        char c = 'c';
        bool ok = fd >= 0 && send(fd, &c, 1, MSG_NOSIGNAL) == 1 && recv(fd, &c, 1, 0) == 1;
        if (fd >= 0 && rst) {
          linger now{1, 0};
          setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
        }
        if (fd >= 0) close(fd);
        ++(ok ? done : failed);
        if (failed > 100) return;
      }
    });
  for (auto& th : threads) th.join();
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("cps parallel=%u close=%s conns_s=%.0f conns=%llu failed=%llu\n", parallel,
              rst ? "rst" : "fin", static_cast<double>(done) / took,
              static_cast<unsigned long long>(done.load()),
              static_cast<unsigned long long>(failed.load()));
  return failed ? 1 : 0;
}

long rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// `exchanges` > 0: each connection first makes that many exchanges of 64 B with the chat sink,
// as an HTTP/2 or WebSocket client does before it idles, and then holds.
int run_idle(const Target& t, unsigned conns, int pid, unsigned exchanges) {
  const long before = rss_kib(pid);
  std::vector<int> fds;
  for (unsigned i = 0; i < conns; ++i) {
    int fd = dial(t, exchanges ? "chat" : "idle");
    if (fd < 0) break;
    fds.push_back(fd);
    char request[64] = {};
    for (unsigned k = 0; k < exchanges; ++k)
      if (!round_trip(fd, request)) return std::printf("idle failed=exchange\n"), 1;
  }
  std::this_thread::sleep_for(1s);  // let the target finish each preread and upstream connect
  const long after = rss_kib(pid);
  // Nothing is ever sent back on an idle connection: a readable one was closed or reset (a
  // target at its connection limit), and its memory must not count as an idle one's.
  std::size_t closed = 0;
  for (int fd : fds) {
    pollfd p{fd, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) != 0) ++closed;
  }
  for (int fd : fds) close(fd);
  if (closed > 0) {
    std::fprintf(stderr, "idle: %zu of %zu connections were closed by the target\n", closed,
                 fds.size());
    return 1;
  }
  std::printf("idle conns=%zu exchanges=%u rss_before_kib=%ld rss_after_kib=%ld "
              "bytes_per_conn=%.0f\n",
              fds.size(), exchanges, before, after,
              fds.empty() ? 0.0 : static_cast<double>(after - before) * 1024 / static_cast<double>(fds.size()));
  return fds.size() == conns ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"snigate-load: loopback load generator and sink for tools/bench/bench.sh"};
  app.require_subcommand(1);
  std::string ip = "127.0.3.1";
  std::uint16_t port = 0;
  unsigned conns = 1, count = 5000, parallel = 4;
  double seconds = 3;
  std::size_t size = 64;
  int pid = 0;

  auto* sink = app.add_subcommand("sink", "Run the backend; prints its port");
  sink->add_option("--ip", ip, "Address to listen on");
  unsigned addresses = 1;
  sink->add_option("--addresses", addresses, "Listen on this many consecutive addresses from --ip")
      ->check(CLI::Range(1u, 16u));
  auto add_target = [&](CLI::App* sub) {
    sub->add_option("--ip", ip, "Target address");
    sub->add_option("--port", port, "Target port")->required();
  };
  auto* tput = app.add_subcommand("throughput", "Bulk upload with N connections");
  add_target(tput);
  tput->add_option("--conns", conns)->check(CLI::Range(1u, 256u));
  tput->add_option("--seconds", seconds)->check(CLI::Range(0.1, 60.0));
  auto* echo = app.add_subcommand("echo", "Bulk two-way: N connections write and read their echo");
  add_target(echo);
  echo->add_option("--conns", conns)->check(CLI::Range(1u, 256u));
  echo->add_option("--seconds", seconds)->check(CLI::Range(0.1, 60.0));
  auto* lat = app.add_subcommand("latency", "Request/response round trips on one connection");
  add_target(lat);
  lat->add_option("--count", count)->check(CLI::Range(1u, 1000000u));
  lat->add_option("--size", size)->check(CLI::Range(1, 65536));
  auto* cps = app.add_subcommand("cps", "New connections per second, one exchange each");
  add_target(cps);
  cps->add_option("--parallel", parallel)->check(CLI::Range(1u, 64u));
  cps->add_option("--seconds", seconds)->check(CLI::Range(0.1, 60.0));
  std::string close_by = "fin";
  cps->add_option("--close", close_by, "How each connection ends: fin or rst")
      ->check(CLI::IsMember({"fin", "rst"}));
  auto* idle = app.add_subcommand("idle", "RSS growth of PID per idle connection");
  add_target(idle);
  idle->add_option("--conns", conns)->check(CLI::Range(1u, 20000u));
  idle->add_option("--pid", pid, "Process whose memory is measured")->required();
  unsigned exchanges = 0;
  idle->add_option("--exchanges", exchanges, "64-byte exchanges per connection before it idles")
      ->check(CLI::Range(0u, 10000u));
  CLI11_PARSE(app, argc, argv);

  Target t{ip, port};
  if (sink->parsed()) return run_sink(ip, addresses);
  if (tput->parsed()) return run_throughput(t, conns, seconds);
  if (echo->parsed()) return run_echo(t, conns, seconds);
  if (lat->parsed()) return run_latency(t, count, size);
  if (cps->parsed()) return run_cps(t, parallel, seconds, close_by == "rst");
  return run_idle(t, conns, pid, exchanges);
}
