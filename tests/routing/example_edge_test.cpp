// examples/edge.toml is the issue 2 deployment users copy: it must load, and each name must
// reach the backend (address, port and PROXY version) the deployment promises. Config only;
// nothing here connects anywhere.
#include <gtest/gtest.h>

#include "config/config.h"
#include "routing/route_table.h"

namespace snigate::routing {
namespace {

using config::ProxyProtocol;

struct Expected {
  std::string backend;
  std::string server;
  ProxyProtocol proxy_protocol;
};

class ExampleEdge : public ::testing::Test {
 protected:
  config::Config c = config::load_file(SNIGATE_EXAMPLES_DIR "/edge.toml");

  Expected route(const std::string& listener, std::string_view name) {
    for (const auto& l : c.listeners) {
      if (l.name != listener) continue;
      RouteTable t = RouteTable::build(c.tables.at(l.table));
      const std::string* backend = t.lookup(name);
      if (!backend) return {"(none)", "", ProxyProtocol::Off};
      const config::BackendConfig& b = c.backends.at(*backend);
      return {*backend, b.servers.at(0).text, b.proxy_protocol};
    }
    ADD_FAILURE() << "no listener " << listener;
    return {};
  }
};

TEST_F(ExampleEdge, ListensOn443ForTlsAnd80ForHttp) {
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].protocol, config::Protocol::Tls);
  EXPECT_EQ(c.listeners[0].listen.port(), 443);
  EXPECT_EQ(c.listeners[1].protocol, config::Protocol::Http);
  EXPECT_EQ(c.listeners[1].listen.port(), 80);
}

TEST_F(ExampleEdge, TlsNamesReachTheirBackendsWithProxyV2) {
  for (auto name : {"subdomain1.mydomain.org", "subdomain2.mydomain.org", "SubDomain2.MyDomain.org."}) {
    Expected e = route("https", name);
    EXPECT_EQ(e.backend, "backend_a") << name;
    EXPECT_EQ(e.server, "192.168.99.11:443") << name;
    EXPECT_EQ(e.proxy_protocol, ProxyProtocol::V2) << name;
  }
  Expected b = route("https", "myotherdomain.info");
  EXPECT_EQ(b.server, "192.168.99.12:443");
  EXPECT_EQ(b.proxy_protocol, ProxyProtocol::V2);
  for (auto name : {"mydomain.org", "subdomain3.mydomain.org", "www.myotherdomain.info", ""}) {
    Expected d = route("https", name);
    EXPECT_EQ(d.server, "127.0.0.1:8443") << "'" << name << "'";
    EXPECT_EQ(d.proxy_protocol, ProxyProtocol::V2) << name;
  }
}

TEST_F(ExampleEdge, HttpHostsReachTheSameHostsOnPort80) {
  EXPECT_EQ(route("http", "subdomain1.mydomain.org").server, "192.168.99.11:80");
  EXPECT_EQ(route("http", "subdomain2.mydomain.org").server, "192.168.99.11:80");
  EXPECT_EQ(route("http", "myotherdomain.info").server, "192.168.99.12:80");
  EXPECT_EQ(route("http", "elsewhere.example").server, "127.0.0.1:8080");
  // PROXY on port 80 is chosen per backend.
  EXPECT_EQ(route("http", "subdomain1.mydomain.org").proxy_protocol, ProxyProtocol::V1);
  EXPECT_EQ(route("http", "myotherdomain.info").proxy_protocol, ProxyProtocol::Off);
}

TEST(ExampleForwardGateway, LoadsAndSendsOnlyListedNamesOutward) {
  config::Config c = config::load_file(SNIGATE_EXAMPLES_DIR "/forward-gateway.toml");
  RouteTable t = RouteTable::build(c.tables.at("outbound"));
  EXPECT_EQ(*t.lookup("deb.debian.org"), "to_sni_name");
  EXPECT_EQ(*t.lookup("www.github.com"), "to_sni_name");
  EXPECT_EQ(*t.lookup("evil.example"), "local_web");
  EXPECT_EQ(c.backends.at("to_sni_name").forward_port, 443);
  EXPECT_FALSE(c.backends.at("to_sni_name").allow_private);
  const config::ListenerConfig& connect = c.listeners.at(1);
  EXPECT_EQ(connect.protocol, config::Protocol::Connect);
  EXPECT_FALSE(connect.allow.empty());
  EXPECT_EQ(connect.auth, "token:change-me");
}

TEST_F(ExampleEdge, CheckSummaryReportsOk) {
  std::string s = config::check_summary(c);
  EXPECT_NE(s.find(": OK\n"), std::string::npos) << s;
  EXPECT_NE(s.find("  subdomain1.mydomain.org -> backend_a\n"), std::string::npos) << s;
}

}  // namespace
}  // namespace snigate::routing
