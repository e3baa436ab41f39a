#include "metrics/exposition.h"

#include <cmath>

#include <fmt/format.h>

namespace snigate::metrics {

namespace {

// Label values escape backslash, double quote and line feed; HELP text backslash and line
// feed only (the format's two escaping rules).
void append_escaped(std::string& out, std::string_view text, bool quote) {
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quote) out += "\\\"";
    else out += c;
  }
}

const char* type_name(Type type) {
  switch (type) {
    case Type::Counter: return "counter";
    case Type::Gauge: return "gauge";
    case Type::Histogram: return "histogram";
  }
  return "untyped";
}

std::string number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value);
}

}  // namespace

void TextWriter::family(std::string_view name, Type type, std::string_view help) {
  name_ = name;
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  append_escaped(out_, help, false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type_name(type);
  out_ += '\n';
}

void TextWriter::write_labels(const Labels& labels, std::string_view le) {
  if (labels.empty() && le.empty()) return;
  out_ += '{';
  bool first = true;
  auto one = [&](std::string_view key, std::string_view value) {
    if (!first) out_ += ',';
    first = false;
    out_ += key;
    out_ += "=\"";
    append_escaped(out_, value, true);
    out_ += '"';
  };
  for (const auto& [key, value] : labels) one(key, value);
  if (!le.empty()) one("le", le);
  out_ += '}';
}

void TextWriter::sample(const Labels& labels, std::uint64_t value) {
  out_ += name_;
  write_labels(labels);
  out_ += fmt::format(" {}\n", value);
}

void TextWriter::sample(const Labels& labels, std::int64_t value) {
  out_ += name_;
  write_labels(labels);
  out_ += fmt::format(" {}\n", value);
}

void TextWriter::sample(const Labels& labels, double value) {
  out_ += name_;
  write_labels(labels);
  out_ += ' ' + number(value) + '\n';
}

void TextWriter::histogram(const Labels& labels, const HistogramSnapshot& h) {
  for (std::size_t i = 0; i < kLatencyBounds.size(); ++i) {
    out_ += name_ + "_bucket";
    write_labels(labels, number(kLatencyBounds[i]));
    out_ += fmt::format(" {}\n", h.cumulative[i]);
  }
  out_ += name_ + "_bucket";
  write_labels(labels, "+Inf");
  out_ += fmt::format(" {}\n", h.count);
  out_ += name_ + "_sum";
  write_labels(labels);
  out_ += ' ' + number(h.sum_seconds) + '\n';
  out_ += name_ + "_count";
  write_labels(labels);
  out_ += fmt::format(" {}\n", h.count);
}

}  // namespace snigate::metrics
