#include "proxy/access_log.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_sinks.h>

#include "net/prefix.h"
#include "proxy/reopenable_file_sink.h"

namespace snigate::proxy {

namespace {

// Values never contain spaces or quotes from the wire unescaped: a hostile SNI could otherwise
// forge fields for a log watcher. The JSON lines carry the same escaped values, so a value
// reads the same in both formats (and is always valid UTF-8).
std::string escape(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (c > 0x20 && c < 0x7f && c != '"' && c != '\\')
      out.push_back(static_cast<char>(c));
    else
      out += fmt::format("\\x{:02x}", c);
  }
  return out;
}

std::string clean(const std::string& value) { return value.empty() ? "-" : escape(value); }

}  // namespace

std::string endpoint_text(const boost::asio::ip::address& address, std::uint16_t port) {
  const auto a = net::unmap(address);
  if (a.is_v6()) return fmt::format("[{}]:{}", a.to_string(), port);
  // Digits by hand: to_string() goes through inet_ntop's sprintf, three times per connection.
  const auto b = a.to_v4().to_bytes();
  return fmt::format("{}.{}.{}.{}:{}", b[0], b[1], b[2], b[3], port);
}

AccessRecord access_record(const conns::ConnInfo& info, const Ending& ending) {
  AccessRecord r;
  r.client = endpoint_text(info.client, info.client_port);
  r.peer = endpoint_text(info.peer.address(), info.peer.port());
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

std::string format(const AccessRecord& r) {
  std::string line = fmt::format(
      "client={} peer={} listener={} name={} alpn={} backend={} upstream={} in={} out={} ",
      clean(r.client), clean(r.peer), clean(r.listener), clean(r.name), clean(r.alpn),
      clean(r.backend), clean(r.upstream), r.bytes_in, r.bytes_out);
  if (r.connect_ms < 0)
    line += "connect_ms=- ";
  else
    line += fmt::format("connect_ms={:.3f} ", r.connect_ms);
  line += fmt::format("duration_ms={:.3f} relay={} end={}", r.duration_ms, clean(r.relay),
                      to_string(r.end));
  if (!r.verdict.empty())
    line += fmt::format(" requested={} resolved={} verdict={}", clean(r.requested),
                        clean(r.resolved), clean(r.verdict));
  if (!r.detail.empty()) line += " detail=" + clean(r.detail);
  // Last: parsers of the fields before it (end= then detail=, requested=...) keep working.
  if (!r.rule.empty()) line += " rule=" + clean(r.rule);
  if (r.datagrams) line += fmt::format(" packets_in={} packets_out={}", r.packets_in, r.packets_out);
  if (r.kernel_path)
    line += fmt::format(" kernel_packets_in={} kernel_packets_out={}", r.kernel_packets_in,
                        r.kernel_packets_out);
  return line;
}

std::string format_json(const AccessRecord& r, std::chrono::system_clock::time_point time) {
  using namespace std::chrono;
  const auto ms = time_point_cast<milliseconds>(time);
  nlohmann::ordered_json j{
      // fmt 9 prints a time_point in local time: gmtime keeps the "Z" true.
      {"time", fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z",
                           fmt::gmtime(system_clock::to_time_t(ms)),
                           ms.time_since_epoch().count() % 1000)},
      {"client", escape(r.client)},
      {"peer", escape(r.peer)},
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
  if (format_ == config::AccessLogFormat::Json)
    logger_->info(format_json(record, std::chrono::system_clock::now()));
  else
    logger_->info(format(record));
}

std::string AccessLog::reopen() { return file_ ? file_->reopen() : std::string(); }

}  // namespace snigate::proxy
