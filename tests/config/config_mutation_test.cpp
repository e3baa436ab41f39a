// Whatever an operator's editor leaves in the file, loading ends in a Config or a ConfigError
// (which the daemon prints as file:line), never another exception or a crash.
#include <gtest/gtest.h>

#include <random>

#include "config/config.h"

namespace snigate::config {
namespace {

constexpr const char* kSeed = R"([daemon]
relay = "copy"
idle_timeout = "10m"
[[listener]]
listen = "[::1]:9446"
table = "edge"
proxy_protocol_in = true
trusted_proxies = ["127.0.2.0/24"]
[[listener]]
listen = "127.0.2.1:3128"
protocol = "connect"
allow = ["*.example.org"]
auth = "basic:a:b"
[table.edge]
"a.example.org" = "a"
"*.example.org" = "b"
"~^x[0-9]+$" = "a"
default = "a"
[backend.a]
servers = ["127.0.2.10:443 weight=2 max_fails=3 fail_timeout=30s", "[::1]:443 backup"]
proxy_protocol = "v2"
[backend.b]
forward = 443
allow = ["*.example.org"]
[[jail]]
name = "j"
)";

TEST(ConfigMutation, EveryMutantLoadsOrFailsWithConfigError) {
  ASSERT_NO_THROW(load_string(kSeed, "seed.toml"));
  std::mt19937 rng(20261123);
  const std::string seed = kSeed;
  const std::string alphabet = "[]{}\"'=.,:#~*\\\n 0123456789abcxyz-_/\x80\xff";
  int loaded = 0, refused = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string text = seed;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      std::size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0: text[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: text.erase(at, 1 + rng() % 8); break;
        default: text.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
      }
    }
    try {
      load_string(text, "mutant.toml");
      ++loaded;
    } catch (const ConfigError& e) {
      ++refused;
      EXPECT_TRUE(std::string(e.what()).starts_with("mutant.toml")) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "non-config exception " << e.what() << " for:\n" << text;
    }
  }
  // Both outcomes must occur, or the mutations are not exercising the checks.
  EXPECT_GT(loaded, 0);
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace snigate::config
