// [[jail]] sections: what parses, and errors that point at the file and line.
#include <gtest/gtest.h>

#include "config/diag.h"
#include "watch/jail_config.h"

namespace snigate::watch {
namespace {

toml::table parse(std::string_view text) { return toml::parse(text, std::string_view("watch.toml")); }

std::string error_of(std::string_view text) {
  try {
    parse_jails(parse(text));
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(JailConfig, ParsesEveryKey) {
  auto jails = parse_jails(parse(R"(
[[jail]]
name = "nginx-auth"
logpath = ["/var/log/nginx/error.log", "/var/log/nginx/*.error.log"]
filter = "nginx-http-auth[mode=aggressive]"
ignoreregex = "client: 10\\."
maxretry = 3
findtime = "2m"
bantime = "1h"
bantime_increment = { factor = 3, max = "1d" }
ignoreip = ["192.0.2.0/24", "2001:db8::1"]
ban_prefix_v6 = 64
ignoreself = false
action = "ban"

[[jail]]
name = "inline"
logpath = "/var/log/app.log"
failregex = "^login failed from <HOST>$"
)"));
  ASSERT_EQ(jails.size(), 2u);
  const auto& j = jails[0];
  EXPECT_EQ(j.name, "nginx-auth");
  EXPECT_EQ(j.logpath.size(), 2u);
  EXPECT_EQ(j.filter, "nginx-http-auth[mode=aggressive]");
  EXPECT_EQ(j.maxretry, 3);
  EXPECT_EQ(j.findtime, std::chrono::minutes(2));
  EXPECT_EQ(j.bantime, std::chrono::hours(1));
  ASSERT_TRUE(j.bantime_increment);
  EXPECT_EQ(j.bantime_increment->factor, 3.0);
  EXPECT_EQ(j.bantime_increment->max, std::chrono::hours(24));
  EXPECT_EQ(j.ignoreip.size(), 2u);
  EXPECT_EQ(j.ban_prefix_v6, 64u);
  EXPECT_EQ(j.where, "watch.toml:2");
  EXPECT_EQ(jails[1].failregex.size(), 1u);
  EXPECT_EQ(jails[1].ban_prefix_v6, 128u);
  EXPECT_FALSE(j.ignoreself);
  EXPECT_TRUE(jails[1].ignoreself);  // fail2ban's default
}

TEST(JailConfig, ErrorsPointAtFileAndLine) {
  EXPECT_NE(error_of("[[jail]]\nname = \"a\"\nlogpath = \"/x\"\nmaxretry = 0\nfailregex = \"<HOST>\"\n")
                .find("watch.toml:4"),
            std::string::npos);
  auto e = error_of("[[jail]]\nname = \"a\"\nlogpath = \"/x\"\n");
  EXPECT_NE(e.find("watch.toml:1"), std::string::npos) << e;
  EXPECT_NE(e.find("'filter'"), std::string::npos) << e;
  e = error_of("[[jail]]\nname = \"a\"\nlogpath = \"/x\"\nfailregex = \"<HOST>\"\nbantime = \"10 parsecs\"\n");
  EXPECT_NE(e.find("watch.toml:5"), std::string::npos) << e;
  e = error_of("[[jail]]\nname = \"a\"\nlogpath = \"/x\"\nfailregex = \"<HOST>\"\nignoreip = \"192.0.2.1/24\"\n");
  EXPECT_NE(e.find("watch.toml:5"), std::string::npos) << e;
  e = error_of("[[jail]]\nname = \"a\"\nlogpath = \"/x\"\nfailregex = \"<HOST>\"\nbogus = 1\n");
  EXPECT_NE(e.find("bogus"), std::string::npos) << e;
  e = error_of("[[jail]]\nname = \"a\"\nlogpath = \"/x\"\nfailregex = \"<HOST>\"\n"
               "[[jail]]\nname = \"a\"\nlogpath = \"/y\"\nfailregex = \"<HOST>\"\n");
  EXPECT_NE(e.find("watch.toml:5"), std::string::npos) << e;
  EXPECT_NE(e.find("twice"), std::string::npos) << e;
}

}  // namespace
}  // namespace snigate::watch

namespace snigate::watch {
namespace {

// snigated's config has no [watch] (its top level is checked): positions go beside the ban
// store; snigate-watch's [watch] state_dir is taken as written.
TEST(WatchConfig, StateDirDefaultsBesideTheBanStore) {
  EXPECT_EQ(parse_watch_config(toml::table{}).state_dir, "/var/lib/snigate/watch");
  EXPECT_EQ(parse_watch_config(toml::parse("[bans]\nstore = \"/srv/edge/bans.db\"\n")).state_dir,
            "/srv/edge/watch");
  EXPECT_EQ(parse_watch_config(toml::parse("[watch]\nstate_dir = \"/var/lib/w\"\n")).state_dir,
            "/var/lib/w");
}

}  // namespace
}  // namespace snigate::watch
