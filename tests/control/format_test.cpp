// What snigatectl prints: readable durations and sizes, and tables whose cells stay on one
// line however hostile the log sample or reason is.
#include <regex>

#include <gtest/gtest.h>

#include "control/format.h"

namespace snigate::control {
namespace {

using namespace std::chrono_literals;

const TimePoint kNow = TimePoint(std::chrono::seconds(1800000000));  // 2027-01-15 08:00:00 UTC

TEST(ControlFormat, Durations) {
  EXPECT_EQ(format_duration(45s), "45s");
  EXPECT_EQ(format_duration(125s), "2m05s");
  EXPECT_EQ(format_duration(3720s), "1h02m");
  EXPECT_EQ(format_duration(3 * 86400s + 4h), "3d04h");
  EXPECT_EQ(format_duration(-5s), "0s");
}

TEST(ControlFormat, Bytes) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(20 * 1024 * 1024), "20.0 MiB");
}

TEST(ControlFormat, Time) { EXPECT_EQ(format_time(kNow), "2027-01-15 08:00:00 UTC"); }

TEST(ControlFormat, BansTableShowsExpiryDropsJailMatchAndSample) {
  bans::BanEntry timed;
  timed.prefix = *net::Prefix::parse("192.0.2.7");
  timed.expires = kNow + 1h;
  timed.drops = 17;
  timed.source = "jail:sshd";
  timed.jail = "sshd";
  timed.matched_at = kNow - 5min;
  timed.sample = std::string("Failed password for root from 192.0.2.7\r\n") + std::string(300, 'x');
  bans::BanEntry nginx = timed;
  nginx.prefix = *net::Prefix::parse("203.0.113.9");
  nginx.sample =
      "2027/01/15 07:55:00 [error] 1234#1234: *5678 user \"admin\": password mismatch, "
      "client: 203.0.113.9, server: app.example.org, request: \"GET /admin HTTP/1.1\", "
      "host: \"app.example.org\"";
  bans::BanEntry permanent;
  permanent.prefix = *net::Prefix::parse("2001:db8::/64");
  permanent.source = "ctl";
  permanent.reason = "scanner";
  bans::BanEntry old = permanent;
  old.prefix = *net::Prefix::parse("198.51.100.0/24");
  old.expires = kNow - 1s;

  auto text = format_bans_table({timed, permanent, old, nginx}, kNow);
  std::vector<std::string> lines;
  for (std::size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
    lines.push_back(text.substr(at, nl - at));
  ASSERT_EQ(lines.size(), 5u) << text;  // header + one line per ban, the CR LF flattened
  EXPECT_EQ(lines[0].rfind("PREFIX", 0), 0u);
  for (const char* col : {"REMAINING", "DROPS", "JAIL", "MATCHED", "SAMPLE"})
    EXPECT_NE(lines[0].find(col), std::string::npos) << col;
  EXPECT_NE(lines[1].find("192.0.2.7"), std::string::npos);
  EXPECT_NE(lines[1].find("1h00m"), std::string::npos);
  EXPECT_NE(lines[1].find(" 17 "), std::string::npos);
  EXPECT_NE(lines[1].find("sshd"), std::string::npos);
  EXPECT_NE(lines[1].find("2027-01-15 07:55:00 UTC"), std::string::npos);
  EXPECT_NE(lines[1].find("Failed password for root"), std::string::npos);
  EXPECT_NE(lines[1].find("..."), std::string::npos);  // the long sample is shortened
  EXPECT_NE(lines[2].find("permanent"), std::string::npos);
  EXPECT_NE(lines[2].find("scanner"), std::string::npos);
  EXPECT_NE(lines[3].find("expired"), std::string::npos);
  EXPECT_NE(lines[4].find("client: 203.0.113.9, server: app.example.org"), std::string::npos);
  // Columns line up: every row has PREFIX's width before the next column.
  EXPECT_EQ(lines[1].find("1h00m"), lines[0].find("REMAINING"));
}

TEST(ControlFormat, EmptyLists) {
  EXPECT_EQ(format_bans_table({}, kNow), "no bans\n");
  EXPECT_EQ(format_conns_table({}, kNow), "no connections\n");
}

TEST(ControlFormat, ConnsTable) {
  conns::ConnInfo c;
  c.id = 3;
  c.peer = {boost::asio::ip::make_address("127.0.0.1"), 40000};
  c.client = boost::asio::ip::make_address("192.0.2.9");
  c.listener = "https";
  c.server_name = "a.example";
  c.backend = "backend_a";
  c.state = "relaying";
  c.started = kNow - 65s;
  auto counters = std::make_shared<relay::Counters>();
  counters->mode = relay::Mode::Splice;
  counters->upstream_to_client = 2048;
  c.counters = counters;
  auto text = format_conns_table({c}, kNow);
  for (const char* want : {"192.0.2.9", "127.0.0.1:40000", "a.example", "backend_a",
                           "relaying/splice", "2.0 KiB", "1m05s"})
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
}

TEST(ControlFormat, ConnsTableNamesQuicFlows) {
  conns::ConnInfo c;
  c.protocol = "quic";
  c.state = "forwarding";
  c.started = kNow;
  c.counters = std::make_shared<relay::Counters>();
  EXPECT_NE(format_conns_table({c}, kNow).find("quic forwarding"), std::string::npos);
}

// top ranks by what moved between the two looks, not by what a connection moved in its life:
// an old bulk transfer gone quiet sits below a small busy one, and backends add up.
TEST(ControlFormat, TopRanksByBytesSinceTheLastLook) {
  auto conn = [](std::uint64_t id, const char* backend, std::uint64_t up, std::uint64_t down) {
    conns::ConnInfo c;
    c.id = id;
    c.client = boost::asio::ip::make_address("192.0.2." + std::to_string(id));
    c.backend = backend;
    c.state = "relaying";
    c.started = kNow - 10s;
    auto counters = std::make_shared<relay::Counters>();
    counters->client_to_upstream = up;
    counters->upstream_to_client = down;
    counters->mode = relay::Mode::Copy;
    c.counters = counters;
    return c;
  };
  std::vector<conns::ConnInfo> before{conn(1, "bulk", 0, 100 << 20), conn(2, "web", 0, 0)};
  std::vector<conns::ConnInfo> now{conn(1, "bulk", 0, 100 << 20), conn(2, "web", 0, 4096),
                                   conn(3, "web", 2048, 0)};
  const std::string text = format_top(before, now, 2s, 2, kNow);
  const auto second = text.find("192.0.2.2"), third = text.find("192.0.2.3");
  ASSERT_NE(second, std::string::npos) << text;
  ASSERT_NE(third, std::string::npos) << text;
  EXPECT_LT(second, third) << text;
  EXPECT_EQ(text.find("192.0.2.1 "), std::string::npos) << "only the 2 busiest rows:\n" << text;
  EXPECT_NE(text.find("2.0 KiB/s"), std::string::npos) << text;  // 4096 bytes over 2 s
  EXPECT_NE(text.find("3 live"), std::string::npos) << text;
  // web: two connections, 2048 up and 4096 down over 2 s; bulk: one, nothing new.
  std::regex web(R"(\nweb\s+2\s+1.0 KiB/s\s+2.0 KiB/s\n)");
  std::regex bulk(R"(\nbulk\s+1\s+0 B/s\s+0 B/s\n)");
  EXPECT_TRUE(std::regex_search(text, web)) << text;
  EXPECT_TRUE(std::regex_search(text, bulk)) << text;
  EXPECT_LT(text.find("\nweb "), text.find("\nbulk ")) << text;
}

// A forward connection shows what was asked, what DNS gave and the verdict; a plain edge's
// table keeps its narrow columns.
TEST(ControlFormat, ConnsTableShowsForwardFieldsWhenPresent) {
  conns::ConnInfo plain;
  plain.id = 1;
  plain.client = boost::asio::ip::make_address("192.0.2.9");
  plain.server_name = "a.example";
  plain.started = kNow;
  EXPECT_EQ(format_conns_table({plain}, kNow).find("VERDICT"), std::string::npos);

  conns::ConnInfo fwd = plain;
  fwd.id = 2;
  fwd.listener = "gateway";
  fwd.server_name = "b.example";
  fwd.forward = {"b.example:443", "198.51.100.10,2001:db8::10", "allowed"};
  fwd.upstream = "198.51.100.10:443";
  auto text = format_conns_table({plain, fwd}, kNow);
  std::vector<std::string> lines;
  for (std::size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
    lines.push_back(text.substr(at, nl - at));
  ASSERT_EQ(lines.size(), 3u) << text;
  for (const char* col : {"REQUESTED", "RESOLVED", "VERDICT", "UPSTREAM"})
    EXPECT_NE(lines[0].find(col), std::string::npos) << col << "\n" << text;
  EXPECT_EQ(lines[2].find("b.example:443"), lines[0].find("REQUESTED")) << text;
  EXPECT_EQ(lines[2].find("198.51.100.10,2001:db8::10"), lines[0].find("RESOLVED")) << text;
  EXPECT_EQ(lines[2].find("allowed"), lines[0].find("VERDICT")) << text;
  EXPECT_EQ(lines[1].find("-", lines[0].find("REQUESTED")), lines[0].find("REQUESTED")) << text;
}

TEST(ControlFormat, StatsFlattenToDottedKeys) {
  nlohmann::json stats{{"connections", {{"accepted", 5}, {"active", 1}}}, {"mode", "splice"}};
  EXPECT_EQ(format_stats(stats), "connections.accepted  5\nconnections.active    1\nmode                  splice\n");
}

TEST(ControlFormat, BanMade) {
  bans::BanEntry e;
  e.prefix = *net::Prefix::parse("192.0.2.7");
  EXPECT_EQ(format_ban_made(e, kNow), "banned 192.0.2.7 permanently");
  e.expires = kNow + 1h;
  EXPECT_EQ(format_ban_made(e, kNow), "banned 192.0.2.7 for 1h00m (until 2027-01-15 09:00:00 UTC)");
  // The daemon's reply reached us 1.4 s after it made the ban: still the length asked for.
  e.created = kNow;
  EXPECT_EQ(format_ban_made(e, kNow + 1400ms), "banned 192.0.2.7 for 1h00m (until 2027-01-15 09:00:00 UTC)");
}

}  // namespace
}  // namespace snigate::control
