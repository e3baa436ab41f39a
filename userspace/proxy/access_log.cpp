#include "proxy/access_log.h"

#include <algorithm>
#include <cmath>

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>

#include "net/prefix.h"
#include "proxy/reopenable_file_sink.h"

namespace snigate::proxy {

namespace {

void append(std::string_view text, fmt::memory_buffer& out) {
  out.append(text.data(), text.data() + text.size());
}

// Values never contain spaces or quotes from the wire unescaped: a hostile SNI could otherwise
// forge fields for a log watcher. The JSON lines carry the same escaped values, so a value
// reads the same in both formats (and is always valid UTF-8).
void append_escaped(std::string_view value, fmt::memory_buffer& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t clean_from = 0;  // appended in runs, not byte by byte
  for (std::size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c > 0x20 && c < 0x7f && c != '"' && c != '\\') continue;
    append(value.substr(clean_from, i - clean_from), out);
    const char e[] = {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
    out.append(e, e + sizeof e);
    clean_from = i + 1;
  }
  append(value.substr(clean_from), out);
}

std::string escape(std::string_view value) {
  fmt::memory_buffer out;
  append_escaped(value, out);
  return fmt::to_string(out);
}

void append_number(std::uint64_t n, fmt::memory_buffer& out) {
  const fmt::format_int digits(n);
  out.append(digits.data(), digits.data() + digits.size());
}

// " key=value", "-" for an empty value; `key` comes with its leading space and "=".
void append_field(std::string_view key, std::string_view value, fmt::memory_buffer& out) {
  append(key, out);
  if (value.empty())
    out.push_back('-');
  else
    append_escaped(value, out);
}

// Milliseconds with three decimals, as "{:.3f}" shows them (to the nearest microsecond), by
// integer arithmetic: fmt's floating-point path was a third of the line's cost.
void append_ms(double ms, fmt::memory_buffer& out) {
  const auto us = static_cast<std::uint64_t>(std::llround(std::max(ms, 0.0) * 1000));
  append_number(us / 1000, out);
  const char fraction[] = {'.', static_cast<char>('0' + us / 100 % 10),
                           static_cast<char>('0' + us / 10 % 10), static_cast<char>('0' + us % 10)};
  out.append(fraction, fraction + sizeof fraction);
}

void append_number_field(std::string_view key, std::uint64_t n, fmt::memory_buffer& out) {
  append(key, out);
  append_number(n, out);
}

void append_endpoint(const boost::asio::ip::address& address, std::uint16_t port,
                     fmt::memory_buffer& out) {
  const auto a = net::unmap(address);
  if (a.is_v6()) {
    out.push_back('[');
    append(a.to_string(), out);
    out.push_back(']');
  } else {
    // Digits by hand: to_string() goes through inet_ntop's sprintf, three times per connection.
    const auto b = a.to_v4().to_bytes();
    for (std::size_t i = 0; i < b.size(); ++i) {
      if (i) out.push_back('.');
      append_number(b[i], out);
    }
  }
  out.push_back(':');
  append_number(port, out);
}

}  // namespace

std::string endpoint_text(const boost::asio::ip::address& address, std::uint16_t port) {
  fmt::memory_buffer out;
  append_endpoint(address, port, out);
  return fmt::to_string(out);
}

AccessRecord access_record(const conns::ConnInfo& info, const Ending& ending) {
  AccessRecord r;
  r.client = info.client;
  r.client_port = info.client_port;
  r.peer = info.peer;
  r.listener = info.listener;
  r.name = info.server_name;
  r.alpn = info.alpn;
  r.backend = info.backend;
  r.rule = info.rule;
  r.upstream = info.upstream;
  if (const auto& f = info.forward) {
    r.requested = f->requested;
    r.resolved = f->resolved;
    r.verdict = f->verdict;
  }
  r.end = ending.end;
  r.detail = ending.detail;
  r.connect_ms = ending.connect_ms;
  r.duration_ms = ending.duration_ms;
  if (info.counters) {
    r.bytes_in = info.counters->client_to_upstream;
    r.bytes_out = info.counters->upstream_to_client;
    r.relay = relay::to_string(info.counters->mode);
  }
  if (const auto& d = info.datagrams) {
    // A flow's relay is where its datagrams went: snigated's sockets, or the kernel path.
    r.relay = d->kernel ? "kernel" : "udp";
    r.datagrams = true;
    r.packets_in = d->packets_in;
    r.packets_out = d->packets_out;
    r.kernel_path = d->kernel;
    r.kernel_packets_in = d->kernel_packets_in;
    r.kernel_packets_out = d->kernel_packets_out;
  }
  return r;
}

void append_line(const AccessRecord& r, fmt::memory_buffer& out) {
  append("client=", out);
  append_endpoint(r.client, r.client_port, out);
  append(" peer=", out);
  append_endpoint(r.peer.address(), r.peer.port(), out);
  append_field(" listener=", r.listener, out);
  append_field(" name=", r.name, out);
  append_field(" alpn=", r.alpn, out);
  append_field(" backend=", r.backend, out);
  append_field(" upstream=", r.upstream, out);
  append_number_field(" in=", r.bytes_in, out);
  append_number_field(" out=", r.bytes_out, out);
  append(" connect_ms=", out);
  if (r.connect_ms < 0)
    out.push_back('-');
  else
    append_ms(r.connect_ms, out);
  append(" duration_ms=", out);
  append_ms(r.duration_ms, out);
  append_field(" relay=", r.relay, out);
  append(" end=", out);
  append(to_string(r.end), out);
  if (!r.verdict.empty()) {
    append_field(" requested=", r.requested, out);
    append_field(" resolved=", r.resolved, out);
    append_field(" verdict=", r.verdict, out);
  }
  if (!r.detail.empty()) append_field(" detail=", r.detail, out);
  // Last: parsers of the fields before it (end= then detail=, requested=...) keep working.
  if (!r.rule.empty()) append_field(" rule=", r.rule, out);
  if (r.datagrams) {
    append_number_field(" packets_in=", r.packets_in, out);
    append_number_field(" packets_out=", r.packets_out, out);
  }
  if (r.kernel_path) {
    append_number_field(" kernel_packets_in=", r.kernel_packets_in, out);
    append_number_field(" kernel_packets_out=", r.kernel_packets_out, out);
  }
}

std::string format_json(const AccessRecord& r, std::chrono::system_clock::time_point time) {
  using namespace std::chrono;
  const auto ms = time_point_cast<milliseconds>(time);
  nlohmann::ordered_json j{
      // fmt 9 prints a time_point in local time: gmtime keeps the "Z" true.
      {"time", fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z",
                           fmt::gmtime(system_clock::to_time_t(ms)),
                           ms.time_since_epoch().count() % 1000)},
      {"client", endpoint_text(r.client, r.client_port)},
      {"peer", endpoint_text(r.peer.address(), r.peer.port())},
      {"listener", escape(r.listener)},
      {"name", escape(r.name)},
      {"alpn", escape(r.alpn)},
      {"backend", escape(r.backend)},
      {"upstream", escape(r.upstream)},
      {"in", r.bytes_in},
      {"out", r.bytes_out},
      {"connect_ms",
       r.connect_ms < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(r.connect_ms)},
      {"duration_ms", r.duration_ms},
      {"relay", escape(r.relay)},
      {"end", to_string(r.end)}};
  if (!r.rule.empty()) j["rule"] = escape(r.rule);
  if (!r.verdict.empty()) {
    j["requested"] = escape(r.requested);
    j["resolved"] = escape(r.resolved);
    j["verdict"] = escape(r.verdict);
  }
  if (!r.detail.empty()) j["detail"] = escape(r.detail);
  if (r.datagrams) {
    j["packets_in"] = r.packets_in;
    j["packets_out"] = r.packets_out;
  }
  if (r.kernel_path) {
    j["kernel_packets_in"] = r.kernel_packets_in;
    j["kernel_packets_out"] = r.kernel_packets_out;
  }
  return j.dump();
}

AccessLog::AccessLog(const std::string& target, config::AccessLogFormat format)
    : format_(format) {
  std::shared_ptr<spdlog::sinks::sink> sink;
  if (target.empty() || target == "stdout") {
    sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  } else {
    file_ = std::make_shared<ReopenableFileSink>(target);
    sink = file_;
  }
  logger_ = std::make_shared<spdlog::logger>("access", sink);
  if (format_ == config::AccessLogFormat::Json)
    logger_->set_pattern("%v");  // the object carries its own time
  else
    logger_->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %v", spdlog::pattern_time_type::utc);
  if (!file_) logger_->flush_on(spdlog::level::info);  // stdout: each line as it comes
}

void AccessLog::start() {
  if (!file_ || flusher_.joinable()) return;
  file_->on_batch_full([this] {
    {
      std::lock_guard lock(flusher_mu_);
      batch_full_ = true;
    }
    flusher_wake_.notify_one();
  });
  flusher_ = std::thread([this] {
    std::unique_lock lock(flusher_mu_);
    while (!stopping_) {
      flusher_wake_.wait_for(lock, kFlushInterval, [this] { return stopping_ || batch_full_; });
      batch_full_ = false;
      lock.unlock();  // the sink may ask again while this batch is written
      file_->drain();
      lock.lock();
    }
  });
}

AccessLog::~AccessLog() {
  if (flusher_.joinable()) {
    {
      std::lock_guard lock(flusher_mu_);
      stopping_ = true;
    }
    flusher_wake_.notify_one();
    flusher_.join();
    file_->on_batch_full({});  // nobody left to wake: the flush below writes the rest
  }
  logger_->flush();
}

void AccessLog::write(const AccessRecord& record) {
  if (format_ == config::AccessLogFormat::Json) {
    logger_->info(format_json(record, std::chrono::system_clock::now()));
    return;
  }
  // One buffer per thread, reused: a line costs no allocation once the buffer has grown.
  thread_local fmt::memory_buffer line;
  line.clear();
  append_line(record, line);
  logger_->info(std::string_view(line.data(), line.size()));
}

std::string AccessLog::reopen() { return file_ ? file_->reopen() : std::string(); }

}  // namespace snigate::proxy
