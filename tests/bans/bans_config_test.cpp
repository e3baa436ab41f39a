// The [bans] section of the daemon's config.
#include <gtest/gtest.h>

#include "bans/ban_manager.h"
#include "config/diag.h"

namespace snigate::bans {
namespace {

BansConfig parse(std::string_view text) {
  return parse_bans_config(toml::parse(text, std::string_view("snigate.toml")));
}

std::string error_of(std::string_view text) {
  try {
    parse(text);
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(BansConfig, DefaultsWhenAbsent) {
  auto cfg = parse("[daemon]\n");
  EXPECT_EQ(cfg.pin_dir, "/sys/fs/bpf/snigate/v1");
  EXPECT_TRUE(cfg.interfaces.empty());
  EXPECT_TRUE(cfg.enabled);
  EXPECT_EQ(cfg.repeat_factor, 2.0);
}

TEST(BansConfig, ReadsEveryKey) {
  auto cfg = parse(R"(
[bans]
interfaces = ["eth0", "eth1"]
ignore = ["192.0.2.0/24", "2001:db8::1"]
store = "/tmp/x/bans.db"
pin_dir = "/sys/fs/bpf/test/v1"
sweep_interval = "2s"
repeat_factor = 3
repeat_max = "7d"
)");
  EXPECT_EQ(cfg.interfaces, (std::vector<std::string>{"eth0", "eth1"}));
  ASSERT_EQ(cfg.ignore.size(), 2u);
  EXPECT_EQ(cfg.ignore[1].str(), "2001:db8::1");
  EXPECT_EQ(cfg.store, "/tmp/x/bans.db");
  EXPECT_EQ(cfg.sweep_interval, std::chrono::seconds(2));
  EXPECT_EQ(cfg.repeat_factor, 3.0);
  EXPECT_EQ(cfg.repeat_max, std::chrono::hours(24 * 7));
}

TEST(BansConfig, ErrorsPointAtFileAndLine) {
  EXPECT_EQ(error_of("[bans]\ninterfaze = [\"eth0\"]\n").rfind("snigate.toml:2:", 0), 0u)
      << error_of("[bans]\ninterfaze = [\"eth0\"]\n");
  auto bad_prefix = error_of("[bans]\n\nignore = [\"192.0.2.1/24\"]\n");
  EXPECT_EQ(bad_prefix.rfind("snigate.toml:3:", 0), 0u) << bad_prefix;
  EXPECT_NE(bad_prefix.find("192.0.2.0/24"), std::string::npos) << bad_prefix;
  EXPECT_NE(error_of("[bans]\nrepeat_factor = 0.5\n").find("repeat_factor"), std::string::npos);
  EXPECT_NE(error_of("[bans]\npin_dir = \"relative\"\n").find("absolute"), std::string::npos);
}

}  // namespace
}  // namespace snigate::bans
