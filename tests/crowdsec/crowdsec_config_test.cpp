// The [crowdsec] section: what it takes, and errors that point at the line.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "config/diag.h"
#include "crowdsec/crowdsec_config.h"

namespace snigate::crowdsec {
namespace {

using namespace std::chrono_literals;

class CrowdsecConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "snigate-cs-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    key_ = dir_ + "/key";
    std::ofstream(key_) << "0123456789abcdef\n";
    ::chmod(key_.c_str(), 0600);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  CrowdsecConfig parse(const std::string& body) {
    auto root = toml::parse(std::string_view(body), std::string_view("snigate.toml"));
    return parse_crowdsec_config(root);
  }
  // The error's text, or "" when the section parsed.
  std::string error_of(const std::string& body) {
    try {
      parse(body);
    } catch (const config::ConfigError& e) {
      return e.what();
    }
    return {};
  }
  std::string section(const std::string& more = {}) {
    return "[crowdsec]\nlapi_url = \"http://127.0.0.1:8080/\"\napi_key_file = \"" + key_ + "\"\n" + more;
  }

  std::string dir_, key_;
};

TEST_F(CrowdsecConfigTest, DefaultsAndValues) {
  EXPECT_FALSE(parse("").enabled);
  auto cfg = parse(section());
  EXPECT_TRUE(cfg.enabled);
  EXPECT_EQ(cfg.api_key, "0123456789abcdef");
  EXPECT_EQ(cfg.lapi.host, "127.0.0.1");
  EXPECT_EQ(cfg.lapi.port, "8080");
  EXPECT_EQ(cfg.lapi.base, "");
  EXPECT_EQ(cfg.poll_interval, 10s);
  EXPECT_EQ(cfg.resync_interval, 5min);
  EXPECT_EQ(cfg.filter.scopes, (std::vector<std::string>{"Ip", "Range"}));
  cfg = parse(section("poll_interval = \"1s\"\nscopes = [\"Ip\"]\norigins = [\"cscli\", \"crowdsec\"]\n"
                      "scenarios = [\"ssh\"]\n"));
  EXPECT_EQ(cfg.poll_interval, 1s);
  EXPECT_EQ(cfg.filter.scopes, std::vector<std::string>{"Ip"});
  EXPECT_EQ(cfg.filter.origins.size(), 2u);
  EXPECT_EQ(cfg.filter.scenarios, std::vector<std::string>{"ssh"});
  EXPECT_EQ(parse(section("resync_interval = \"30s\"\n")).resync_interval, 30s);
  // Unset, the full pull is never more often than the pulls themselves.
  EXPECT_EQ(parse(section("poll_interval = \"10m\"\n")).resync_interval, 10min);
  EXPECT_FALSE(parse("[crowdsec]\nenabled = false\n").enabled);
}

TEST_F(CrowdsecConfigTest, Urls) {
  std::string error;
  auto url = parse_lapi_url("http://[::1]:8081/crowdsec/", error);
  ASSERT_TRUE(url) << error;
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, "8081");
  EXPECT_EQ(url->base, "/crowdsec");
  url = parse_lapi_url("http://lapi.internal", error);
  ASSERT_TRUE(url) << error;
  EXPECT_EQ(url->port, "80");
  for (const char* bad : {"https://x:8080", "127.0.0.1:8080", "http://:8080", "http://x:0",
                          "http://x:99999", "http://[::1:8080", "http://x:port"})
    EXPECT_FALSE(parse_lapi_url(bad, error)) << bad;
}

TEST_F(CrowdsecConfigTest, ErrorsPointAtTheLineAndSayWhatToDo) {
  auto e = error_of("[crowdsec]\nlapi_url = \"https://lapi:8080\"\napi_key_file = \"" + key_ + "\"\n");
  EXPECT_NE(e.find("snigate.toml:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("http://"), std::string::npos) << e;
  e = error_of("[crowdsec]\napi_key_file = \"" + key_ + "\"\n");
  EXPECT_NE(e.find("needs 'lapi_url'"), std::string::npos) << e;
  e = error_of(section("poll_intervall = \"1s\"\n"));
  EXPECT_NE(e.find("snigate.toml:4:"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'poll_interval'"), std::string::npos) << e;
  e = error_of(section("scopes = [\"Country\"]\n"));
  EXPECT_NE(e.find("snigate.toml:4:"), std::string::npos) << e;
  EXPECT_NE(e.find("Country"), std::string::npos) << e;
  e = error_of(section("poll_interval = \"10ms\"\n"));
  EXPECT_NE(e.find("at least"), std::string::npos) << e;
  e = error_of(section("poll_interval = \"10s\"\nresync_interval = \"5s\"\n"));
  EXPECT_NE(e.find("snigate.toml:5:"), std::string::npos) << e;
  EXPECT_NE(e.find("'resync_interval' must be at least 'poll_interval'"), std::string::npos) << e;

  ::chmod(key_.c_str(), 0644);
  e = error_of(section());
  EXPECT_NE(e.find("snigate.toml:3:"), std::string::npos) << e;
  EXPECT_NE(e.find("chmod 600"), std::string::npos) << e;
  e = error_of("[crowdsec]\nlapi_url = \"http://127.0.0.1:8080/\"\napi_key_file = \"" + dir_ + "/none\"\n");
  EXPECT_NE(e.find("cscli bouncers add"), std::string::npos) << e;
}

}  // namespace
}  // namespace snigate::crowdsec
