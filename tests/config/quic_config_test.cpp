// protocol = "quic" listeners: UDP beside TCP on the same address, their flow bounds, and the
// combinations QUIC cannot serve refused at their line.
#include <gtest/gtest.h>

#include "config/config.h"

namespace snigate::config {
namespace {

// Nine lines; a listener appended starts at line 10.
constexpr const char* kBase = R"([[listener]]
listen = "127.0.2.1:443"
table = "edge"
[table.edge]
"a.example.org" = "a"
default = "a"
[backend.a]
servers = ["127.0.2.10:443"]

)";

std::string error_with(const std::string& body) {
  try {
    load_string(std::string(kBase) + body, "bad.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(loaded without error)";
}

TEST(QuicConfig, SharesTheTcpAddressAndTakesItsBounds) {
  Config c = load_string(std::string(kBase) + R"([[listener]]
name = "h3"
listen = "127.0.2.1:443"
protocol = "quic"
table = "edge"
max_flows = 100
flow_idle_timeout = "45s"
preread_datagrams = 4
preread_timeout = "2s"
)", "ok.toml");
  ASSERT_EQ(c.listeners.size(), 2u);
  const ListenerConfig& q = c.listeners[1];
  EXPECT_EQ(q.protocol, Protocol::Quic);
  EXPECT_EQ(q.listen, c.listeners[0].listen);
  EXPECT_EQ(q.quic.max_flows, 100u);
  EXPECT_EQ(q.quic.flow_idle_timeout, std::chrono::seconds(45));
  EXPECT_EQ(q.quic.preread_datagrams, 4u);
  EXPECT_EQ(q.preread_timeout, std::chrono::seconds(2));
  EXPECT_NE(check_summary(c).find("listener h3: quic on 127.0.2.1:443 (UDP), flows up to 100, "
                                  "idle 45000ms, table edge"),
            std::string::npos)
      << check_summary(c);
}

TEST(QuicConfig, DefaultsHoldAnIdleFlowThirtySeconds) {
  Config c = load_string(std::string(kBase) +
                             "[[listener]]\nlisten = \"127.0.2.1:443\"\nprotocol = \"quic\"\n"
                             "table = \"edge\"\n",
                         "ok.toml");
  EXPECT_EQ(c.listeners[1].quic.flow_idle_timeout, std::chrono::seconds(30));
  EXPECT_EQ(c.listeners[1].quic.max_flows, 4096u);
  EXPECT_STREQ(to_string(Protocol::Quic), "quic");
}

TEST(QuicConfig, TwoQuicListenersOnOnePortAreRefused) {
  std::string q = "[[listener]]\nlisten = \"127.0.2.1:443\"\nprotocol = \"quic\"\ntable = \"edge\"\n";
  std::string e = error_with(q + "name = \"one\"\n" + q + "name = \"two\"\n");
  EXPECT_EQ(e, "bad.toml:16:10: two listeners listen on 127.0.2.1:443");
}

TEST(QuicConfig, ProxyProtocolInIsRefusedAtItsLine) {
  std::string e = error_with("[[listener]]\nlisten = \"127.0.2.1:443\"\nprotocol = \"quic\"\n"
                             "table = \"edge\"\nproxy_protocol_in = true\n"
                             "trusted_proxies = [\"10.0.0.1\"]\n");
  EXPECT_EQ(e, "bad.toml:14:21: 'proxy_protocol_in' cannot apply to a quic listener: QUIC "
               "datagrams carry no PROXY header; remove it");
}

TEST(QuicConfig, DeferAcceptIsRefusedAtItsLine) {
  std::string e = error_with("[[listener]]\nlisten = \"127.0.2.1:443\"\nprotocol = \"quic\"\n"
                             "table = \"edge\"\ndefer_accept = false\n");
  EXPECT_EQ(e, "bad.toml:14:16: 'defer_accept' belongs to TCP listeners: a quic listener accepts "
               "nothing; remove it");
}

TEST(QuicConfig, FlowKeysOnATcpListenerAreRefused) {
  std::string e = error_with("[[listener]]\nlisten = \"127.0.2.1:80\"\nprotocol = \"http\"\n"
                             "table = \"edge\"\nflow_idle_timeout = \"10s\"\n");
  EXPECT_EQ(e, "bad.toml:14:21: 'flow_idle_timeout' belongs to quic listeners (protocol = "
               "\"quic\")");
}

TEST(QuicConfig, PrereadMaxBelowOneInitialDatagramIsRefused) {
  std::string e = error_with("[[listener]]\nlisten = \"127.0.2.1:443\"\nprotocol = \"quic\"\n"
                             "table = \"edge\"\npreread_max = 1000\n");
  EXPECT_TRUE(e.starts_with("bad.toml:14:15: a quic listener holds whole datagrams")) << e;
}

TEST(QuicConfig, ForwardBackendInAQuicTableIsRefusedAtTheEntry) {
  std::string e = error_with(R"([[listener]]
listen = "127.0.2.1:443"
protocol = "quic"
table = "fwd"
[table.fwd]
"*.example.org" = "dns"
[backend.dns]
forward = 443
allow = ["*.example.org"]
)");
  EXPECT_TRUE(e.starts_with("bad.toml:15:1: [table.fwd] sends quic listener 127.0.2.1:443#2's "
                            "flows to backend 'dns', which forwards to the SNI name over TCP"))
      << e;
}

}  // namespace
}  // namespace snigate::config
