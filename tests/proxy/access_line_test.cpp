// The access log's text line, byte for byte, from a connection's registry record: the fields
// log watchers and fail2ban filters parse.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "conns/conn_registry.h"
#include "proxy/access_log.h"
#include "relay/relay.h"

namespace {

using namespace snigate;
namespace ip = boost::asio::ip;

std::string line_of(const conns::ConnInfo& info, const proxy::Ending& ending) {
  fmt::memory_buffer out;
  proxy::append_line(proxy::access_record(info, ending), out);
  return fmt::to_string(out);
}

conns::ConnInfo relayed() {
  conns::ConnInfo info;
  info.listener = "tls";
  info.peer = {ip::make_address("::ffff:198.51.100.2"), 40000};
  info.client = ip::make_address("203.0.113.9");
  info.client_port = 51000;
  info.server_name = "example.org";
  info.alpn = "h2,http/1.1";
  info.backend = "web";
  info.rule = "exact";
  info.upstream = "192.168.99.11:443";
  auto counters = std::make_shared<relay::Counters>();
  counters->client_to_upstream = 517;
  counters->upstream_to_client = 4096;
  counters->mode = relay::Mode::Copy;
  info.counters = counters;
  return info;
}

TEST(AccessLine, RelayedConnectionHasEveryFieldInOrder) {
  EXPECT_EQ(line_of(relayed(), {proxy::EndReason::Clean, "", 1.25, 80.5}),
            "client=203.0.113.9:51000 peer=198.51.100.2:40000 listener=tls name=example.org "
            "alpn=h2,http/1.1 backend=web upstream=192.168.99.11:443 in=517 out=4096 "
            "connect_ms=1.250 duration_ms=80.500 relay=copy end=clean rule=exact");
}

TEST(AccessLine, WireBytesAreEscapedAndEmptyFieldsAreDashes) {
  conns::ConnInfo info;
  info.listener = "tls";
  info.peer = {ip::make_address("2001:db8::7"), 443};
  info.client = info.peer.address();
  info.client_port = 443;
  // A hostile SNI that would forge fields: space, quote, backslash, a control byte, UTF-8.
  info.server_name = "a b\"c\\d\x01\xc3\xa9";
  EXPECT_EQ(line_of(info, {proxy::EndReason::ParseError, "not TLS: x=1", -1, 0.0004}),
            "client=[2001:db8::7]:443 peer=[2001:db8::7]:443 listener=tls "
            "name=a\\x20b\\x22c\\x5cd\\x01\\xc3\\xa9 alpn=- backend=- upstream=- in=0 out=0 "
            "connect_ms=- duration_ms=0.000 relay=- end=parse_error "
            "detail=not\\x20TLS:\\x20x=1");
}

TEST(AccessLine, ForwardAndFlowFieldsFollowTheEnd) {
  conns::ConnInfo info = relayed();
  info.rule.clear();
  info.forward = conns::ConnInfo::Forward{"api.example.com:443", "203.0.113.7,2001:db8::7",
                                          "allowed"};
  auto& d = info.datagrams.emplace();
  d.packets_in = 3;
  d.packets_out = 5;
  d.kernel = true;
  d.kernel_packets_in = 1;
  d.kernel_packets_out = 4;
  EXPECT_EQ(line_of(info, {proxy::EndReason::Timeout, "", 0.5, 2.0006}),
            "client=203.0.113.9:51000 peer=198.51.100.2:40000 listener=tls name=example.org "
            "alpn=h2,http/1.1 backend=web upstream=192.168.99.11:443 in=517 out=4096 "
            "connect_ms=0.500 duration_ms=2.001 relay=kernel end=timeout "
            "requested=api.example.com:443 resolved=203.0.113.7,2001:db8::7 verdict=allowed "
            "packets_in=3 packets_out=5 kernel_packets_in=1 kernel_packets_out=4");
}

}  // namespace
