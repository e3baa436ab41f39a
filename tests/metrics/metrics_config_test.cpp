// [metrics]: off unless listen is set; mistakes named with file:line.
#include <gtest/gtest.h>

#include "config/diag.h"
#include "metrics/metrics_config.h"

namespace snigate::metrics {
namespace {

toml::table parse(const std::string& text) {
  return toml::parse(std::string_view(text), std::string_view("test.toml"));
}

std::string error_of(const std::string& text) {
  try {
    parse_metrics_config(parse(text));
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(MetricsConfig, OffUnlessListenIsSet) {
  EXPECT_FALSE(parse_metrics_config(parse("")).enabled);
  EXPECT_FALSE(parse_metrics_config(parse("[metrics]\n")).enabled);
  auto cfg = parse_metrics_config(parse("[metrics]\nlisten = \"127.0.0.1:9100\"\n"));
  EXPECT_TRUE(cfg.enabled);
  EXPECT_EQ(cfg.listen.port(), 9100);
  EXPECT_EQ(cfg.listen.address().to_string(), "127.0.0.1");
  EXPECT_FALSE(parse_metrics_config(parse("[metrics]\nlisten = \"[::1]:9100\"\nenabled = false\n"))
                   .enabled);
}

TEST(MetricsConfig, MistakesNameFileAndLine) {
  EXPECT_NE(error_of("[metrics]\n\nlisten = \"localhost:9100\"\n").find("test.toml:3"),
            std::string::npos)
      << error_of("[metrics]\n\nlisten = \"localhost:9100\"\n");
  EXPECT_NE(error_of("[metrics]\nlisten = \"127.0.0.1\"\n").find("test.toml:2"), std::string::npos);
  EXPECT_NE(error_of("[metrics]\nlistn = \"127.0.0.1:9100\"\n").find("did you mean 'listen'"),
            std::string::npos);
  EXPECT_NE(error_of("[metrics]\nenabled = true\n").find("needs 'listen'"), std::string::npos);
  EXPECT_NE(error_of("metrics = 1\n").find("must be a table"), std::string::npos);
}

}  // namespace
}  // namespace snigate::metrics
