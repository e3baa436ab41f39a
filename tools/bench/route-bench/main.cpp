// route-bench: what [[table.X.rule]]s cost per connection. One table as edges write it today
// (1,000 exact names, 100 wildcards, a default) against the same table with 1,000 rules added
// (900 on an exact name and a client range, 90 on a wildcard and an ALPN, 10 with no name),
// each looked up with the same mix of names, ALPN lists and client addresses. Rounds are
// interleaved and the median per table is printed with the ratio.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "config/config.h"
#include "routing/route_table.h"

namespace {

using namespace snigate;
using Clock = std::chrono::steady_clock;

std::string table_text(bool rules) {
  std::string t = "[[listener]]\nlisten = \"127.0.0.1:0\"\ntable = \"t\"\n[table.t]\n";
  for (int i = 0; i < 1000; ++i) t += "\"host" + std::to_string(i) + ".example.org\" = \"b\"\n";
  for (int i = 0; i < 100; ++i) t += "\"*.zone" + std::to_string(i) + ".example.net\" = \"b\"\n";
  t += "default = \"b\"\n";
  if (rules) {
    for (int i = 0; i < 900; ++i)
      t += "[[table.t.rule]]\nname = \"host" + std::to_string(i) + ".example.org\"\nclient = [\"10." +
           std::to_string(i % 200) + ".0.0/16\", \"fd00:" + std::to_string(i) + "::/32\"]\nbackend = \"r\"\n";
    for (int i = 0; i < 90; ++i)
      t += "[[table.t.rule]]\nname = \"*.zone" + std::to_string(i) +
           ".example.net\"\nalpn = [\"xmpp-client\", \"imap\"]\nbackend = \"r\"\n";
    for (int i = 0; i < 10; ++i)
      t += "[[table.t.rule]]\nalpn = [\"acme-tls/" + std::to_string(i) + "\"]\nbackend = \"r\"\n";
  }
  t += "[backend.b]\nservers = [\"127.0.0.1:1\"]\n[backend.r]\nservers = [\"127.0.0.1:1\"]\n";
  return t;
}

struct Query {
  std::string name;
  std::vector<std::string> alpn;
  boost::asio::ip::address client;
};

std::vector<Query> queries(unsigned n) {
  std::vector<Query> out;
  const std::vector<std::vector<std::string>> alpns{{"h2", "http/1.1"}, {"xmpp-client"}, {}};
  for (unsigned i = 0; i < n; ++i) {
    Query q;
    switch (i % 4) {
      case 0: q.name = "host" + std::to_string(i % 1200) + ".example.org"; break;
      case 1: q.name = "www.zone" + std::to_string(i % 120) + ".example.net"; break;
      case 2: q.name = "a.b.c.zone" + std::to_string(i % 100) + ".example.net"; break;
      default: q.name = "unknown" + std::to_string(i) + ".example.com"; break;
    }
    q.alpn = alpns[i % 3];
    q.client = boost::asio::ip::make_address("10." + std::to_string(i % 256) + ".1.2");
    out.push_back(std::move(q));
  }
  return out;
}

// Nanoseconds per lookup over one pass of the queries.
double pass(const routing::RouteTable& t, const std::vector<Query>& qs, std::size_t& sink) {
  const auto start = Clock::now();
  for (const auto& q : qs) sink += t.route({q.name, &q.alpn, q.client}).backend->size();
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count() /
         static_cast<double>(qs.size());
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"route-bench: route lookup with 1,000 rules against names only"};
  unsigned rounds = 15, lookups = 200000;
  app.add_option("--rounds", rounds, "interleaved rounds per table")->check(CLI::Range(1u, 1000u));
  app.add_option("--lookups", lookups, "lookups per round")->check(CLI::Range(1000u, 10000000u));
  CLI11_PARSE(app, argc, argv);

  auto names = config::load_string(table_text(false), "names.toml");
  auto with_rules = config::load_string(table_text(true), "rules.toml");
  auto a = routing::RouteTable::build(names.tables.at("t"));
  auto b = routing::RouteTable::build(with_rules.tables.at("t"));
  const auto qs = queries(lookups);
  std::size_t sink = 0;
  std::vector<double> ta, tb;
  pass(a, qs, sink);  // warm both
  pass(b, qs, sink);
  for (unsigned r = 0; r < rounds; ++r) {
    ta.push_back(pass(a, qs, sink));
    tb.push_back(pass(b, qs, sink));
  }
  std::printf("names only (1,000 exact, 100 wildcards): %.1f ns/lookup (median of %u)\n",
              median(ta), rounds);
  std::printf("plus 1,000 rules (name+client, wildcard+alpn, alpn only): %.1f ns/lookup\n",
              median(tb));
  std::printf("ratio: %.2fx (sink %zu)\n", median(tb) / median(ta), sink % 10);
  return 0;
}
