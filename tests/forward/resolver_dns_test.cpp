// The c-ares resolver against a real DNS server (dnsmasq on 127.0.7.53): answers, NXDOMAIN,
// TTL-honouring cache (counted in queries sent), concurrent lookups sharing one query.
#include "forward/resolver.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "forward/local_dns.h"

namespace snigate::forward {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct ResolverDns : ::testing::Test {
  itest::TempDir dir;
  itest::DnsServer dns{dir};
  asio::io_context io;
  Resolver resolver{io.get_executor(),
                    ResolverConfig{{"127.0.7.53:" + std::to_string(dns.port())}, 2s}};

  Resolution resolve(const std::string& name) {
    auto fut = asio::co_spawn(io, resolver.resolve(name), asio::use_future);
    io.run_for(5s);
    io.restart();
    EXPECT_EQ(fut.wait_for(0s), std::future_status::ready);
    return fut.get();
  }
};

TEST_F(ResolverDns, AnswersAndNxdomain) {
  auto ok = resolve("Allowed.Test.");
  ASSERT_EQ(ok.status, ResolveStatus::Ok) << ok.error;
  ASSERT_EQ(ok.addresses.size(), 1u);
  EXPECT_EQ(ok.addresses[0].to_string(), "127.0.7.10");
  EXPECT_EQ(ok.ttl, 60s);
  auto missing = resolve("missing.test");
  EXPECT_EQ(missing.status, ResolveStatus::NotFound) << missing.error;
}

TEST_F(ResolverDns, CacheHonoursTheTtl) {
  EXPECT_EQ(resolve("allowed.test").status, ResolveStatus::Ok);
  EXPECT_EQ(resolve("short.test").status, ResolveStatus::Ok);
  EXPECT_EQ(resolver.queries(), 2u);
  auto again = resolve("allowed.test");
  EXPECT_TRUE(again.from_cache);
  EXPECT_EQ(resolver.queries(), 2u);
  std::this_thread::sleep_for(1200ms);  // short.test's TTL is 1 s
  auto expired = resolve("short.test");
  EXPECT_FALSE(expired.from_cache);
  EXPECT_EQ(resolver.queries(), 3u);
  EXPECT_TRUE(resolve("allowed.test").from_cache);
}

TEST_F(ResolverDns, ConcurrentLookupsOfOneNameShareOneQuery) {
  std::vector<std::future<Resolution>> futures;
  for (int i = 0; i < 5; ++i)
    futures.push_back(asio::co_spawn(io, resolver.resolve("inside.test"), asio::use_future));
  io.run_for(5s);
  for (auto& f : futures) {
    ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
    auto r = f.get();
    ASSERT_EQ(r.status, ResolveStatus::Ok);
    EXPECT_EQ(r.addresses[0].to_string(), "127.0.7.11");
  }
  EXPECT_EQ(resolver.queries(), 1u);
}

}  // namespace
}  // namespace snigate::forward
