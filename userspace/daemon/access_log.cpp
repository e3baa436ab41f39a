#include "daemon/access_log.h"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "daemon/reopenable_file_sink.h"

namespace snigate::daemon {

namespace {

// Values never contain spaces or quotes from the wire unescaped: a hostile SNI could otherwise
// forge fields for a log watcher.
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
  return line;
}

AccessLog::AccessLog(const std::string& target) {
  std::shared_ptr<spdlog::sinks::sink> sink;
  if (target.empty() || target == "stdout") {
    sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  } else {
    file_ = std::make_shared<ReopenableFileSink>(target);
    sink = file_;
  }
  logger_ = std::make_shared<spdlog::logger>("access", sink);
  logger_->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %v", spdlog::pattern_time_type::utc);
  logger_->flush_on(spdlog::level::info);
}

void AccessLog::write(const AccessRecord& record) { logger_->info(format(record)); }

std::string AccessLog::reopen() { return file_ ? file_->reopen() : std::string(); }

}  // namespace snigate::daemon
