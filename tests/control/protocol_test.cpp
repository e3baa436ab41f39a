// The control socket's JSON: what snigatectl sends decodes to the same ban, and bad requests
// get an error reply that names the problem instead of a crash or a silent default.
#include <gtest/gtest.h>

#include <limits>

#include "control/control_server.h"
#include "control/protocol.h"

namespace snigate::control {
namespace {

using nlohmann::json;

net::Prefix P(const char* text) { return *net::Prefix::parse(text); }

TEST(ControlProtocol, BanRequestRoundTrips) {
  bans::BanRequest r;
  r.prefix = P("2001:db8::/64");
  r.duration = std::chrono::seconds(3600);
  r.reason = "too many 401";
  r.jail = "nginx-http-auth";
  r.matched_at = bans::Clock::time_point(std::chrono::seconds(1700000000));
  r.sample = "2001:db8::7 - - \"GET /admin\" 401";
  r.force = true;
  std::string error;
  auto back = ban_request_from_json(to_json(r), error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->prefix, r.prefix);
  EXPECT_EQ(back->duration, r.duration);
  EXPECT_EQ(back->reason, r.reason);
  EXPECT_EQ(back->jail, r.jail);
  EXPECT_EQ(back->matched_at, r.matched_at);
  EXPECT_EQ(back->sample, r.sample);
  EXPECT_TRUE(back->force);
  EXPECT_FALSE(to_json(r).contains("source"));  // the daemon fills it in
}

TEST(ControlProtocol, PermanentBanHasNullDuration) {
  bans::BanRequest r;
  r.prefix = P("192.0.2.7");
  json j = to_json(r);
  EXPECT_TRUE(j["duration"].is_null());
  std::string error;
  auto back = ban_request_from_json(j, error);
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->duration);
}

TEST(ControlProtocol, BadBanRequestsNameTheKey) {
  std::string error;
  EXPECT_FALSE(ban_request_from_json(json{{"reason", "x"}}, error));
  EXPECT_NE(error.find("'prefix'"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(ban_request_from_json(json{{"prefix", "192.0.2.1/24"}}, error));
  EXPECT_NE(error.find("192.0.2.0/24"), std::string::npos) << error;  // did you mean
  error.clear();
  EXPECT_FALSE(ban_request_from_json(json{{"prefix", "192.0.2.1"}, {"duration", "1h"}}, error));
  EXPECT_NE(error.find("'duration' must be an integer"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(ban_request_from_json(json{{"prefix", "192.0.2.1"}, {"duration", 0}}, error));
  EXPECT_NE(error.find("positive"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(ban_request_from_json(json{{"prefix", "192.0.2.1"}, {"force", "yes"}}, error));
  EXPECT_NE(error.find("'force'"), std::string::npos) << error;
}

// A duration or time that would overflow the clocks is refused with the limit, never
// accepted as an expiry in the past (which bans nothing) or a matched_at stored as -1.
TEST(ControlProtocol, AbsurdDurationsAndTimesAreRefused) {
  std::string error;
  EXPECT_FALSE(ban_request_from_json(json{{"prefix", "192.0.2.1"}, {"duration", 9999999999}}, error));
  EXPECT_NE(error.find("'duration' must be a positive number of seconds up to 315360000"),
            std::string::npos)
      << error;
  error.clear();
  EXPECT_FALSE(ban_request_from_json(
      json{{"prefix", "192.0.2.1"}, {"matched_at", std::numeric_limits<std::int64_t>::max()}},
      error));
  EXPECT_NE(error.find("'matched_at' must be seconds since 1970"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(ban_request_from_json(json{{"prefix", "192.0.2.1"}, {"matched_at", -1}}, error));
  EXPECT_NE(error.find("'matched_at'"), std::string::npos) << error;
  error.clear();
  auto ok = ban_request_from_json(json{{"prefix", "192.0.2.1"}, {"duration", 315360000}}, error);
  ASSERT_TRUE(ok) << error;
  EXPECT_EQ(ok->duration, std::chrono::seconds(315360000));
}

TEST(ControlProtocol, BanRequestCarriesItsIdempotencyId) {
  bans::BanRequest r;
  r.prefix = *net::Prefix::parse("192.0.2.1");
  r.id = "0123456789abcdef0123456789abcdef";
  std::string error;
  auto back = ban_request_from_json(to_json(r), error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->id, r.id);
  EXPECT_FALSE(ban_request_from_json(json{{"prefix", "192.0.2.1"}, {"id", std::string(129, 'x')}},
                                     error));
  EXPECT_NE(error.find("'id' must be at most 128 characters"), std::string::npos) << error;
}

TEST(ControlProtocol, BanEntryRoundTrips) {
  bans::BanEntry e;
  e.prefix = P("198.51.100.0/24");
  e.created = bans::Clock::time_point(std::chrono::seconds(1700000000));
  e.expires = e.created + std::chrono::hours(1);
  e.source = "jail:sshd";
  e.jail = "sshd";
  e.drops = 42;
  e.offences = 3;
  std::string error;
  auto back = ban_entry_from_json(to_json(e), error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->prefix, e.prefix);
  EXPECT_EQ(back->expires, e.expires);
  EXPECT_EQ(back->drops, 42u);
  EXPECT_EQ(back->offences, 3u);
  EXPECT_EQ(back->jail, "sshd");
  EXPECT_FALSE(back->matched_at);
}

TEST(ControlProtocol, ConnRoundTripsWithCounters) {
  conns::ConnInfo c;
  c.id = 7;
  c.peer = {boost::asio::ip::make_address("2001:db8::2"), 40000};
  c.client = boost::asio::ip::make_address("192.0.2.9");
  c.server_name = "a.example";
  auto counters = std::make_shared<relay::Counters>();
  counters->client_to_upstream = 1000;
  counters->upstream_to_client = 2000;
  counters->mode = relay::Mode::Copy;
  c.counters = counters;
  json j = to_json(c);
  EXPECT_EQ(j["peer"], "[2001:db8::2]:40000");
  EXPECT_EQ(j["relay_mode"], "copy");
  std::string error;
  auto back = conn_from_json(j, error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->peer, c.peer);
  EXPECT_EQ(back->client, c.client);
  EXPECT_EQ(back->counters->client_to_upstream.load(), 1000u);
  EXPECT_EQ(back->counters->upstream_to_client.load(), 2000u);
  EXPECT_EQ(back->counters->mode.load(), relay::Mode::Copy);
}

// A QUIC flow says so; an older daemon's reply, without the key, reads as a TCP connection.
TEST(ControlProtocol, QuicFlowKeepsItsProtocol) {
  conns::ConnInfo c;
  c.protocol = "quic";
  json j = to_json(c);
  EXPECT_EQ(j["protocol"], "quic");
  std::string error;
  auto back = conn_from_json(j, error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->protocol, "quic");
  j.erase("protocol");
  back = conn_from_json(j, error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->protocol, "");
}

TEST(ControlProtocol, ForwardConnKeepsRequestedResolvedAndVerdict) {
  conns::ConnInfo c;
  c.forward = {"a.example:443", "192.0.2.10,2001:db8::10", "allowed"};
  json j = to_json(c);
  EXPECT_EQ(j["requested"], "a.example:443");
  EXPECT_EQ(j["resolved"], "192.0.2.10,2001:db8::10");
  EXPECT_EQ(j["verdict"], "allowed");
  std::string error;
  auto back = conn_from_json(j, error);
  ASSERT_TRUE(back) << error;
  ASSERT_TRUE(back->forward);
  EXPECT_EQ(back->forward->requested, c.forward->requested);
  EXPECT_EQ(back->forward->resolved, c.forward->resolved);
  EXPECT_EQ(back->forward->verdict, c.forward->verdict);
  // An older daemon's reply, without the keys, decodes to empty fields.
  j.erase("requested");
  j.erase("verdict");
  back = conn_from_json(j, error);
  ASSERT_TRUE(back) << error;
  ASSERT_TRUE(back->forward);  // resolved is still there
  EXPECT_EQ(back->forward->requested, "");
  EXPECT_EQ(back->forward->verdict, "");
}

ControlHandlers fake_handlers(std::vector<bans::BanRequest>& seen) {
  ControlHandlers h;
  h.ban = [&seen](const bans::BanRequest& r) {
    seen.push_back(r);
    bans::BanOutcome o;
    if (r.prefix == P("10.0.0.0/8") && !r.force) {
      o.error = "10.0.0.0/8 is in [bans] ignore; add --force";
      return o;
    }
    o.ok = true;
    o.entry.prefix = r.prefix;
    o.connections_closed = 2;
    return o;
  };
  h.unban = [](const net::Prefix& p) { return p == P("192.0.2.7"); };
  h.stats = []() -> json { throw std::runtime_error("counters unavailable"); };
  return h;
}

TEST(ControlRequests, BanDefaultsSourceToCtlAndReportsClosedConnections) {
  std::vector<bans::BanRequest> seen;
  auto reply = handle_request(fake_handlers(seen), R"({"cmd":"ban","prefix":"192.0.2.7"})");
  ASSERT_TRUE(reply["ok"].get<bool>()) << reply.dump();
  EXPECT_EQ(reply["ban"]["prefix"], "192.0.2.7");
  EXPECT_EQ(reply["connections_closed"], 2);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].source, "ctl");
}

TEST(ControlRequests, RefusalsAndBadInputBecomeErrorReplies) {
  std::vector<bans::BanRequest> seen;
  auto h = fake_handlers(seen);
  auto refused = handle_request(h, R"({"cmd":"ban","prefix":"10.0.0.0/8"})");
  EXPECT_FALSE(refused["ok"].get<bool>());
  EXPECT_NE(refused["error"].get<std::string>().find("--force"), std::string::npos);

  auto junk = handle_request(h, "ban 1.2.3.4");
  EXPECT_FALSE(junk["ok"].get<bool>());
  EXPECT_NE(junk["error"].get<std::string>().find("not a JSON object"), std::string::npos);

  auto unknown = handle_request(h, R"({"cmd":"bna"})");
  EXPECT_NE(unknown["error"].get<std::string>().find("known: ban, unban"), std::string::npos);

  auto no_ban = handle_request(h, R"({"cmd":"unban","prefix":"192.0.2.8"})");
  EXPECT_EQ(no_ban["error"], "no ban on 192.0.2.8 (see snigatectl bans)");
  EXPECT_TRUE(handle_request(h, R"({"cmd":"unban","prefix":"192.0.2.7"})")["ok"].get<bool>());

  auto thrown = handle_request(h, R"({"cmd":"stats"})");
  EXPECT_EQ(thrown["error"], "stats failed inside the daemon: counters unavailable");

  auto missing = handle_request(h, R"({"cmd":"reload"})");
  EXPECT_NE(missing["error"].get<std::string>().find("does not support 'reload'"), std::string::npos);
}

}  // namespace
}  // namespace snigate::control
