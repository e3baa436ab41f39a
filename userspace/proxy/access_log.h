#pragma once
// One line per connection, key=value, so log watchers and people can both read it:
//   2026-01-01T10:00:00.123Z client=203.0.113.9:51000 peer=10.0.0.2:40000 listener=0.0.0.0:443
//   name=example.org alpn=h2 backend=backend_a upstream=192.168.99.11:443 in=517 out=4096
//   connect_ms=1.2 duration_ms=80.5 relay=splice end=clean
// Forward connections (SNI forwarding, CONNECT) add, before any detail:
//   requested=api.example.com:443 resolved=203.0.113.7,2001:db8::7 verdict=allowed
// QUIC flows add, last: packets_in=3 packets_out=5 (datagrams each way; in= and out= count
// what the client sent, held or forwarded, and what the backend sent back), and when the
// kernel path forwarded the flow (relay=kernel) how many of those it moved:
// kernel_packets_in=1 kernel_packets_out=4 (the rest passed through snigated's sockets).
// With access_log_format = "json", one JSON object per line for log shippers, with the same
// keys in the same order, "time" first; numbers as numbers, connect_ms null when never
// connected, absent text ("-") as "":
//   {"time":"2026-01-01T10:00:00.123Z","client":"203.0.113.9:51000",...,"end":"clean"}
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <fmt/format.h>

#include <spdlog/logger.h>

#include "config/config.h"
#include "conns/conn_registry.h"
#include "proxy/end_reason.h"

namespace snigate::proxy {

// A line's fields: views of the connection's record and of how it ended (valid while both
// live), so gathering them copies no string; the line is formatted from them straight into a
// per-thread buffer.
struct AccessRecord {
  boost::asio::ip::address client;  // real client (from PROXY header when trusted)
  std::uint16_t client_port = 0;
  boost::asio::ip::tcp::endpoint peer;  // who connected to us
  std::string_view listener;
  std::string_view name;      // SNI or Host
  std::string_view alpn;      // first offered ALPN protocols, comma-separated
  std::string_view backend;
  std::string_view rule;      // what chose the backend: "rule#2", "exact", "*.a.b", "default" ...
  std::string_view upstream;
  std::uint64_t bytes_in = 0;   // client -> upstream, preread included
  std::uint64_t bytes_out = 0;  // upstream -> client
  double connect_ms = -1;       // -1: never connected
  double duration_ms = 0;
  std::string_view relay;
  EndReason end = EndReason::Clean;
  // Forward connections only: "NAME:PORT", "A,B", forward::to_string(verdict). An empty
  // verdict leaves the three fields out of the line.
  std::string_view requested;
  std::string_view resolved;
  std::string_view verdict;
  std::string_view detail;      // why, for errors
  bool datagrams = false;       // a QUIC flow: packets_in/packets_out are on the line
  std::uint64_t packets_in = 0;
  std::uint64_t packets_out = 0;
  bool kernel_path = false;     // a QUIC flow the kernel path forwarded: its share is on the line
  std::uint64_t kernel_packets_in = 0;
  std::uint64_t kernel_packets_out = 0;
};

// How a connection or a QUIC flow ended: what its line adds to its record.
struct Ending {
  EndReason end = EndReason::Error;
  std::string_view detail;  // why, for errors (a view: the caller's string outlives the line)
  double connect_ms = -1;   // to connected (a flow: to routed); -1: never
  double duration_ms = 0;
};

// "192.0.2.1:443" or "[2001:db8::1]:443", an IPv4-mapped address as IPv4: how the line and
// `snigatectl conns` show an address.
std::string endpoint_text(const boost::asio::ip::address& address, std::uint16_t port);

// The one way a line's fields are gathered, for TCP connections and QUIC flows alike: from the
// registry's record of the connection (`snigatectl conns` reads the same) and how it ended.
// The result views both.
AccessRecord access_record(const conns::ConnInfo& info, const Ending& ending);

// Appends the line without its time (the logger adds it) to `out`.
void append_line(const AccessRecord& record, fmt::memory_buffer& out);
// The JSON object, time included.
std::string format_json(const AccessRecord& record, std::chrono::system_clock::time_point time);

class ReopenableFileSink;

// Where the lines go ([daemon] access_log: "stdout" or a file, appended) and in which format.
class AccessLog {
 public:
  // Opens the file; throws with advice when it cannot. A file's lines wait for start().
  AccessLog(const std::string& target, config::AccessLogFormat format);
  // Starts flushing a file's batches. A thread, so started with the workers, after a
  // privilege drop (which needs the process to have one thread).
  void start();
  // Writes every line logged so far.
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;
  // Thread-safe; one line per call. A file gets the lines in batches, within
  // kFlushInterval, so a connection costs no write(2) of its own.
  void write(const AccessRecord& record);
  static constexpr std::chrono::milliseconds kFlushInterval{100};
  // Thread-safe: reopens the file at its path (log rotation); "" when done or when logging to
  // stdout, else why not (the old file stays in use).
  std::string reopen();

 private:
  config::AccessLogFormat format_;
  std::shared_ptr<ReopenableFileSink> file_;  // null: stdout
  std::shared_ptr<spdlog::logger> logger_;
  // Writes a file's batch every kFlushInterval, and at once when the sink has a full one: the
  // event loops that log lines wait for the file only once 1 MiB of lines wait for it.
  std::mutex flusher_mu_;
  std::condition_variable flusher_wake_;
  bool stopping_ = false;
  bool batch_full_ = false;
  std::thread flusher_;
};

}  // namespace snigate::proxy
