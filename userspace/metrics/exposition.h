#pragma once
// The Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): one family at a time, its
// # HELP and # TYPE lines, then its samples. Pure: figures in, text out.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics/instruments.h"

namespace snigate::metrics {

inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

using Labels = std::vector<std::pair<std::string_view, std::string>>;

enum class Type { Counter, Gauge, Histogram };

class TextWriter {
 public:
  // Starts a family; the samples that follow belong to it. A family is written once, with
  // all its samples together (the format requires it).
  void family(std::string_view name, Type type, std::string_view help);
  void sample(const Labels& labels, std::uint64_t value);
  void sample(const Labels& labels, std::int64_t value);
  void sample(const Labels& labels, double value);
  // NAME_bucket{...,le="B"} for each bound and +Inf, NAME_sum, NAME_count.
  void histogram(const Labels& labels, const HistogramSnapshot& h);
  const std::string& text() const { return out_; }

 private:
  void write_labels(const Labels& labels, std::string_view le = {});
  std::string out_;
  std::string name_;
};

}  // namespace snigate::metrics
