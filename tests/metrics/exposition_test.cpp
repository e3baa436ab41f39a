// The text format as Prometheus parses it: families once, escaped label values, cumulative
// histogram buckets ending in +Inf, _sum in seconds.
#include <chrono>

#include <gtest/gtest.h>

#include "metrics/exposition.h"

namespace snigate::metrics {
namespace {

using namespace std::chrono_literals;

TEST(Exposition, FamilyHeaderThenSamplesWithEscapedLabels) {
  TextWriter w;
  w.family("snigate_x_total", Type::Counter, "What x counts.\nSecond line \\ here.");
  w.sample({{"listener", "a\"b\\c\nd"}}, std::uint64_t{7});
  w.sample({}, std::int64_t{-2});
  EXPECT_EQ(w.text(),
            "# HELP snigate_x_total What x counts.\\nSecond line \\\\ here.\n"
            "# TYPE snigate_x_total counter\n"
            "snigate_x_total{listener=\"a\\\"b\\\\c\\nd\"} 7\n"
            "snigate_x_total -2\n");
}

TEST(Exposition, HistogramBucketsAreCumulativeAndEndInInf) {
  Histogram h;
  h.observe(50us);    // first bucket (0.0001)
  h.observe(3ms);     // 0.005
  h.observe(3ms);
  h.observe(20s);     // past the last bound: +Inf only
  TextWriter w;
  w.family("snigate_t_seconds", Type::Histogram, "t");
  w.histogram({{"backend", "b"}}, h.snapshot());
  const std::string& t = w.text();
  EXPECT_NE(t.find("snigate_t_seconds_bucket{backend=\"b\",le=\"0.0001\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("snigate_t_seconds_bucket{backend=\"b\",le=\"0.0025\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("snigate_t_seconds_bucket{backend=\"b\",le=\"0.005\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("snigate_t_seconds_bucket{backend=\"b\",le=\"10\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("snigate_t_seconds_bucket{backend=\"b\",le=\"+Inf\"} 4\n"), std::string::npos) << t;
  EXPECT_NE(t.find("snigate_t_seconds_count{backend=\"b\"} 4\n"), std::string::npos) << t;
  EXPECT_NE(t.find("snigate_t_seconds_sum{backend=\"b\"} 20.00605\n"), std::string::npos) << t;
}

TEST(Exposition, ObservationOnABoundCountsInThatBucket) {
  Histogram h;
  h.observe(1ms);  // le="0.001" is "less than or equal"
  auto s = h.snapshot();
  EXPECT_EQ(s.cumulative[2], 0u);  // 0.0005
  EXPECT_EQ(s.cumulative[3], 1u);  // 0.001
}

}  // namespace
}  // namespace snigate::metrics
