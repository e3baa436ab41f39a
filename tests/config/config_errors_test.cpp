// Bad configuration files: each error names the file, line and column of the culprit and says
// what to write instead.
#include <gtest/gtest.h>

#include "config/config.h"

namespace snigate::config {
namespace {

// The error text for `body` appended to a valid base; the base is 9 lines, so the body's first
// line is line 10.
constexpr const char* kBase = R"([[listener]]
listen = "127.0.2.1:9443"
table = "edge"
[table.edge]
"a.example.org" = "a"
default = "a"
[backend.a]
servers = ["127.0.2.10:443"]

)";

std::string error_of(const std::string& text) {
  try {
    load_string(text, "bad.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(loaded without error)";
}

std::string error_with(const std::string& body) { return error_of(kBase + body); }

TEST(ConfigErrors, BaseIsValid) { EXPECT_NO_THROW(load_string(kBase, "base.toml")); }

TEST(ConfigErrors, TomlSyntaxErrorPointsAtLine) {
  EXPECT_TRUE(error_with("[backend.b\nservers = []").starts_with("bad.toml:10:")) << error_with("[backend.b");
}

TEST(ConfigErrors, UnknownKeySuggestsTheNearOne) {
  std::string e = error_with("[backend.b]\nservers = [\"127.0.2.11:443\"]\nconect_timeout = \"5s\"\n");
  EXPECT_EQ(e, "bad.toml:12:1: unknown key 'conect_timeout' in [backend.b] (did you mean "
               "'connect_timeout'?)");
}

TEST(ConfigErrors, UnknownKeyWithoutANearOneHasNoSuggestion) {
  std::string e = error_with("[daemon]\ncolour = \"blue\"\n");
  EXPECT_EQ(e, "bad.toml:11:1: unknown key 'colour' in [daemon]");
}

TEST(ConfigErrors, UnknownTopLevelSection) {
  std::string e = error_with("[backends.b]\nservers = []\n");
  EXPECT_TRUE(e.starts_with("bad.toml:10:")) << e;
  EXPECT_NE(e.find("unknown key 'backends' in [top level] (did you mean 'backend'?)"),
            std::string::npos)
      << e;
}

// A queue limit below 64 KiB would hand every skb back to userspace; the error says the range.
TEST(ConfigErrors, SockmapQueueLimitOutOfRange) {
  std::string e = error_with("[daemon]\nsockmap_queue_limit = 4096\n");
  EXPECT_TRUE(e.starts_with("bad.toml:11:23: ")) << e;
  EXPECT_NE(e.find("sockmap_queue_limit"), std::string::npos) << e;
  EXPECT_NE(e.find("65536"), std::string::npos) << e;
}

TEST(ConfigErrors, SockmapHandoffAfterNegative) {
  std::string e = error_with("[daemon]\nsockmap_handoff_after = -1\n");
  EXPECT_TRUE(e.starts_with("bad.toml:11:25: ")) << e;
  EXPECT_NE(e.find("sockmap_handoff_after"), std::string::npos) << e;
}

TEST(ConfigErrors, BadDuration) {
  std::string e = error_with("[daemon]\nidle_timeout = \"5 minutes\"\n");
  EXPECT_TRUE(e.starts_with("bad.toml:11:16: ")) << e;
  EXPECT_NE(e.find("unknown unit ' minutes' in duration '5 minutes'"), std::string::npos) << e;
  e = error_with("[daemon]\nidle_timeout = \"-5s\"\n");
  EXPECT_NE(e.find("is not a duration such as"), std::string::npos) << e;
  e = error_with("[daemon]\ndrain_timeout = \"5y\"\n");
  EXPECT_NE(e.find("unknown unit 'y'"), std::string::npos) << e;
}

// Every duration has a ceiling, checked before any multiplication: none can wrap into a
// negative time (a drain that never waits) or pass --check and stall a stop for centuries.
TEST(ConfigErrors, DurationsAreBounded) {
  std::string e = error_with("[daemon]\ndrain_timeout = \"9999999999999d\"\n");
  EXPECT_EQ(e, "bad.toml:11:17: duration '9999999999999d' is longer than 1d, the most this "
               "setting takes");
  e = error_with("[daemon]\nidle_timeout = \"99999999999999999999999s\"\n");
  EXPECT_TRUE(e.starts_with("bad.toml:11:16: ")) << e;
  EXPECT_NE(e.find("longer than 3650d"), std::string::npos) << e;
  e = error_with("[daemon]\nidle_timeout = 9223372036854775807\n");
  EXPECT_NE(e.find("bad.toml:11:16: duration 9223372036854775807s is longer than 3650d"),
            std::string::npos)
      << e;
  e = error_with("[backend.b]\nservers = [\"127.0.2.11:443 fail_timeout=2562048h\"]\n");
  EXPECT_NE(e.find("longer than 3650d"), std::string::npos) << e;
  e = error_with("[[listener]]\nlisten = \"127.0.2.2:1\"\ntable = \"edge\"\n"
                 "preread_timeout = \"1h\"\n");
  EXPECT_NE(e.find("bad.toml:13:19: duration '1h' is longer than 10m"), std::string::npos) << e;
  // At the ceiling is fine.
  EXPECT_NO_THROW(load_string(std::string(kBase) + "[daemon]\ndrain_timeout = \"1d\"\n", "ok"));
}

struct ListenCase {
  const char* listen;
  const char* expected;
};

class BadListen : public ::testing::TestWithParam<ListenCase> {};

TEST_P(BadListen, SaysWhatWasProbablyMeant) {
  std::string e = error_with(std::string("[[listener]]\nlisten = \"") + GetParam().listen +
                             "\"\ntable = \"edge\"\n");
  EXPECT_TRUE(e.starts_with("bad.toml:11:10: listen = ")) << e;
  EXPECT_NE(e.find(GetParam().expected), std::string::npos) << e;
}

INSTANTIATE_TEST_SUITE_P(
    Listen, BadListen,
    ::testing::Values(ListenCase{"::1:443", "did you mean \"[::1]:443\"?"},
                      ListenCase{"::", "did you mean \"[::]:443\"?"},
                      ListenCase{":443", "did you mean \"0.0.0.0:443\""},
                      ListenCase{"*:443", "did you mean \"0.0.0.0:443\""},
                      ListenCase{"443", "did you mean \"0.0.0.0:443\""},
                      ListenCase{"127.0.2.1", "needs a port, such as \"127.0.2.1:443\""},
                      ListenCase{"localhost:443", "did you mean \"127.0.0.1:443\""},
                      ListenCase{"example.org:443", "needs an IP address, not 'example.org'"},
                      ListenCase{"127.0.2.1:70000", "'70000' is not a port"},
                      ListenCase{"[::1:443", "missing ']'"},
                      ListenCase{"[::1]443", "needs a port after the address"}));

TEST(ConfigErrors, DuplicateListenAddress) {
  std::string e = error_with("[[listener]]\nlisten = \"127.0.2.1:9443\"\ntable = \"edge\"\n");
  EXPECT_TRUE(e.starts_with("bad.toml:11:10: two listeners listen on 127.0.2.1:9443")) << e;
}

TEST(ConfigErrors, TlsListenerWithoutTable) {
  std::string e = error_with("[[listener]]\nname = \"x\"\nlisten = \"127.0.2.1:9444\"\n");
  EXPECT_TRUE(e.starts_with("bad.toml:10:1: listener x: a tls listener needs 'table'")) << e;
}

TEST(ConfigErrors, ListenerNamesUnknownTable) {
  std::string e = error_with("[[listener]]\nlisten = \"127.0.2.1:9444\"\ntable = \"egde\"\n");
  EXPECT_EQ(e, "bad.toml:12:9: listener 127.0.2.1:9444 names table 'egde', which is not "
               "defined (did you mean 'edge'?); defined tables: edge");
}

TEST(ConfigErrors, TableNamesUnknownBackend) {
  std::string e = error_with("[table.t2]\n\"b.example.org\" = \"backend_a\"\n");
  EXPECT_EQ(e, "bad.toml:11:1: [table.t2] names backend 'backend_a', which is not defined; "
               "defined backends: a");
  e = error_with("[table.t2]\ndefault = \"aa\"\n");
  EXPECT_EQ(e, "bad.toml:11:11: [table.t2] names backend 'aa', which is not defined (did you "
               "mean 'a'?); defined backends: a");
}

TEST(ConfigErrors, RegexThatDoesNotCompileAtItsLine) {
  std::string e = error_with("[table.t2]\n\"x.org\" = \"a\"\n\"~^(api\\\\.example\\\\.com$\" = \"a\"\n");
  EXPECT_TRUE(e.starts_with("bad.toml:12:1: regex \"^(api\\.example\\.com$\": missing closing "
                            "parenthesis at offset"))
      << e;
}

TEST(ConfigErrors, BadRouteNames) {
  EXPECT_NE(error_with("[table.t2]\n\"a.*.org\" = \"a\"\n").find("bad.toml:11:1: name \"a.*.org\": '*' is only allowed"),
            std::string::npos);
  EXPECT_NE(error_with("[table.t2]\n\"*.\" = \"a\"\n").find("bad.toml:11:1: wildcard \"*.\": an empty name"),
            std::string::npos);
  EXPECT_NE(error_with("[table.t2]\n\"a..org\" = \"a\"\n").find("empty label"), std::string::npos);
  EXPECT_NE(error_with("[table.t2]\n\"a b.org\" = \"a\"\n").find("character ' '"), std::string::npos);
}

// Names a terminal cannot show whole: every byte outside printable ASCII is written \xNN (no
// half UTF-8 character, nothing cut at a NUL), and an IDN gets the punycode hint.
TEST(ConfigErrors, NonAsciiAndNulInNamesAreEscaped) {
  std::string e = error_with("[table.t2]\n\"b\u00fccher.example\" = \"a\"\n");
  EXPECT_EQ(e.rfind("bad.toml:11:1: name \"b\\xc3\\xbccher.example\": a non-ASCII name never "
                    "arrives as written", 0), 0u) << e;
  EXPECT_NE(e.find("punycode form (xn--...)"), std::string::npos) << e;
  e = error_with("[table.t2]\n\"a\\u0000b.example\" = \"a\"\n");
  EXPECT_EQ(e, "bad.toml:11:1: name \"a\\x00b.example\": character '\\x00' cannot appear in a "
               "host name") << e;
  e = error_with("[daemon]\n\"w\u00f6rkers\" = 1\n");
  EXPECT_NE(e.find("unknown key 'w\\xc3\\xb6rkers' in [daemon]"), std::string::npos) << e;
}

TEST(ConfigErrors, MisspeltTableKeyword) {
  EXPECT_EQ(error_with("[table.t2]\ndefualt = \"a\"\n"),
            "bad.toml:11:1: \"defualt\" would route a host of that name (did you mean 'default'?)");
  EXPECT_NE(error_with("[table.t2]\nnosni = \"a\"\n").find("(did you mean 'no_sni'?)"),
            std::string::npos);
}

TEST(ConfigErrors, SameNameTwiceIgnoringCaseAndDot) {
  std::string e = error_with("[table.t2]\n\"X.org\" = \"a\"\n\"x.org.\" = \"a\"\n");
  EXPECT_NE(e.find("is listed twice in [table.t2]"), std::string::npos) << e;
  EXPECT_TRUE(e.starts_with("bad.toml:1")) << e;
}

TEST(ConfigErrors, ProxyProtocolInNeedsTrustedProxies) {
  std::string e = error_with(
      "[[listener]]\nlisten = \"127.0.2.1:9444\"\ntable = \"edge\"\nproxy_protocol_in = true\n");
  EXPECT_TRUE(e.starts_with("bad.toml:13:21: proxy_protocol_in = true needs 'trusted_proxies'")) << e;
  e = error_with("[[listener]]\nlisten = \"127.0.2.1:9444\"\ntable = \"edge\"\n"
                 "proxy_protocol_in = true\ntrusted_proxies = [\"10.0.0.1/8\"]\n");
  EXPECT_TRUE(e.starts_with("bad.toml:14:19: trusted_proxies '10.0.0.1/8'")) << e;
}

TEST(ConfigErrors, BadServers) {
  auto with_server = [](const std::string& s) {
    return error_with("[backend.b]\nservers = [\"" + s + "\"]\n");
  };
  EXPECT_TRUE(with_server("127.0.2.11:443 weight=0").starts_with("bad.toml:11:12: server "));
  EXPECT_NE(with_server("127.0.2.11:443 weight=0").find("weight must be a whole number from 1"),
            std::string::npos);
  EXPECT_NE(with_server("127.0.2.11:443 wieght=2").find("unknown option 'wieght=2'"),
            std::string::npos);
  EXPECT_NE(with_server("127.0.2.11").find("needs a port"), std::string::npos);
  EXPECT_NE(with_server("::1:443").find("did you mean \"[::1]:443\"?"), std::string::npos);
  EXPECT_NE(with_server("127.0.2.11:0").find("'0' is not a port from 1 to 65535"),
            std::string::npos);
  EXPECT_NE(with_server("127.0.2.11:443 fail_timeout=soon").find("fail_timeout: 'soon' is not a duration"),
            std::string::npos);
  EXPECT_NE(with_server("127.0.2.11:443 backup").find("only backup servers"), std::string::npos);
}

TEST(ConfigErrors, BackendNeedsServersOrForward) {
  EXPECT_NE(error_with("[backend.b]\nproxy_protocol = \"v2\"\n").find("bad.toml:10:1: [backend.b] needs either"),
            std::string::npos);
  EXPECT_NE(error_with("[backend.b]\nservers = [\"127.0.2.1:1\"]\nforward = 443\nallow = [\"x\"]\n")
                .find("not both"),
            std::string::npos);
  EXPECT_NE(error_with("[backend.b]\nforward = 443\n").find("needs an 'allow' list"),
            std::string::npos);
  EXPECT_NE(error_with("[backend.b]\nforward = 0\nallow = [\"x\"]\n").find("between 1 and 65535"),
            std::string::npos);
  EXPECT_NE(error_with("[backend.b]\nservers = [\"127.0.2.1:1\"]\nallow_private = true\n")
                .find("bad.toml:12:17: 'allow_private' only applies to forward backends"),
            std::string::npos);
  EXPECT_NE(error_with("[backend.b]\nservers = [\"127.0.2.1:1\"]\nproxy_protocol = \"v3\"\n")
                .find("must be off, v1 or v2 (did you mean 'v1'?)"),
            std::string::npos);
}

TEST(ConfigErrors, ConnectListenerRules) {
  const std::string head = "[[listener]]\nlisten = \"127.0.2.1:3128\"\nprotocol = \"connect\"\n";
  EXPECT_NE(error_with(head).find("needs an 'allow' list"), std::string::npos);
  EXPECT_NE(error_with(head + "allow = [\"x.org\"]\ntable = \"edge\"\n").find("remove 'table'"),
            std::string::npos);
  EXPECT_NE(error_with(head + "allow = [\"x.org\"]\nauth = \"basic:alice\"\n")
                .find("bad.toml:14:8: 'auth' must be"),
            std::string::npos);
  EXPECT_NO_THROW(load_string(std::string(kBase) + head + "allow = \"x.org\"\nauth = \"token:t0k\"\n", "ok.toml"));
  EXPECT_NE(error_with("[[listener]]\nlisten = \"127.0.2.1:9444\"\ntable = \"edge\"\nallow = [\"x\"]\n")
                .find("bad.toml:13:9: 'allow' belongs to connect listeners"),
            std::string::npos);
  EXPECT_NE(error_with("[[listener]]\nlisten = \"127.0.2.1:9444\"\nprotocol = \"tsl\"\n")
                .find("must be tls, http, connect or quic (did you mean 'tls'?)"),
            std::string::npos);
}

TEST(ConfigErrors, ForeignSectionsMustHaveTheirShape) {
  EXPECT_NE(error_with("[jail]\nname = \"x\"\n").find("bad.toml:10:1: jails are written [[jail]]"),
            std::string::npos);
  EXPECT_NE(error_of("bans = 1\n" + std::string(kBase)).find("bad.toml:1:8: [bans] must be a table"),
            std::string::npos);
}

TEST(ConfigErrors, NoListenerAtAll) {
  std::string e = error_of("[daemon]\nworkers = 1\n");
  EXPECT_TRUE(e.starts_with("bad.toml: no [[listener]]")) << e;
}

TEST(ConfigErrors, MissingFileIsNamed) {
  try {
    load_file("/nonexistent/snigate.toml");
    FAIL() << "loaded a missing file";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/snigate.toml"), std::string::npos) << e.what();
  }
}

TEST(ConfigErrors, DaemonValues) {
  EXPECT_NE(error_with("[daemon]\nrelay = \"sockmapp\"\n").find("bad.toml:11:9: 'relay' must be one of"),
            std::string::npos);
  EXPECT_NE(error_with("[daemon]\nworkers = -1\n").find("'workers' must be between 0 and 1024"),
            std::string::npos);
  EXPECT_NE(error_with("[daemon]\ncontrol_socket = \"run/c.sock\"\n").find("absolute path"),
            std::string::npos);
  EXPECT_NE(error_with("[daemon]\nlog_level = \"inof\"\n").find("(did you mean 'info'?)"),
            std::string::npos);
  EXPECT_NE(error_with("[daemon]\naccess_log_format = \"ndjson\"\n")
                .find("bad.toml:11:21: 'access_log_format' must be \"text\""),
            std::string::npos);
}

}  // namespace
}  // namespace snigate::config
