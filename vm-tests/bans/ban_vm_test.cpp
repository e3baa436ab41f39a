// Bans enforced by the real XDP program on a veth between two namespaces: a banned source's
// SYNs are dropped (the ban's drop counter rises), every other source still connects.
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "vm_support.h"

namespace snigate::vmtest {
namespace {

using namespace std::chrono_literals;

TEST_F(BanVmTest, XdpDropsTheBannedAddressOnlyV4AndV6) {
  open_manager();
  ASSERT_EQ(manager_->enforcement().size(), 1u);
  EXPECT_EQ(manager_->enforcement()[0].rfind(net_->edge_if() + ": xdp", 0), 0u)
      << manager_->enforcement()[0];
  for (const char* a : {"10.5.1.1", "10.5.1.2", "fd00:5::a", "fd00:5::b"}) EXPECT_TRUE(reaches(a)) << a;

  ASSERT_TRUE(ban("10.5.1.1").ok);
  ASSERT_TRUE(ban("fd00:5::a").ok);
  EXPECT_FALSE(reaches("10.5.1.1"));
  EXPECT_FALSE(reaches("fd00:5::a"));
  EXPECT_TRUE(reaches("10.5.1.2"));
  EXPECT_TRUE(reaches("fd00:5::b"));
  EXPECT_GE(drops_of("10.5.1.1"), 1u);
  EXPECT_GE(drops_of("fd00:5::a"), 1u);
  EXPECT_EQ(drops_of("10.5.1.2"), 0u);
  EXPECT_GE(manager_->totals().dropped, 2u);
  EXPECT_EQ(manager_->totals().refused_at_accept, 0u);  // all of it was the XDP program

  EXPECT_TRUE(manager_->unban(*net::Prefix::parse("10.5.1.1")));
  EXPECT_TRUE(reaches("10.5.1.1"));
}

TEST_F(BanVmTest, CidrBanCoversItsPrefix) {
  open_manager();
  ASSERT_TRUE(ban("10.5.2.0/24").ok);
  EXPECT_FALSE(reaches("10.5.2.1"));
  EXPECT_FALSE(reaches("10.5.2.2"));
  EXPECT_TRUE(reaches("10.5.1.1"));
  EXPECT_GE(drops_of("10.5.2.0/24"), 2u);
}

TEST_F(BanVmTest, TwoSecondBanLiftsOnTimeAndIsSwept) {
  open_manager();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(ban("10.5.1.2", 2s).ok);
  EXPECT_TRUE(manager_->banned(boost::asio::ip::make_address("10.5.1.2")));
  EXPECT_FALSE(reaches("10.5.1.2"));  // takes up to 1.5 s
  std::this_thread::sleep_until(start + 2100ms);
  EXPECT_FALSE(manager_->banned(boost::asio::ip::make_address("10.5.1.2")));
  EXPECT_TRUE(reaches("10.5.1.2"));
  // The sweeper (every second) removes it from the map and the list.
  std::this_thread::sleep_until(start + 3500ms);
  EXPECT_TRUE(manager_->list().empty());
  EXPECT_EQ(manager_->totals().active, 0u);
}

TEST_F(BanVmTest, BanSurvivesARestartAndThePinsBeingRemoved) {
  open_manager();
  ASSERT_TRUE(ban("10.5.1.1", 1h).ok);
  ASSERT_TRUE(ban("fd00:5::b").ok);
  EXPECT_FALSE(reaches("10.5.1.1"));
  const auto drops = drops_of("10.5.1.1");

  manager_.reset();  // clean exit: XDP detached, pins kept
  open_manager();
  EXPECT_EQ(manager_->reconciled().in_sync, 2u);
  EXPECT_EQ(manager_->reconciled().restored_to_map, 0u);
  EXPECT_EQ(drops_of("10.5.1.1"), drops);  // the very same map entries
  EXPECT_FALSE(reaches("10.5.1.1"));
  EXPECT_FALSE(reaches("fd00:5::b"));
  EXPECT_TRUE(reaches("10.5.1.2"));

  manager_.reset();
  std::filesystem::remove_all(cfg_.pin_dir);  // as after a reboot
  open_manager();
  EXPECT_EQ(manager_->reconciled().restored_to_map, 2u);
  EXPECT_FALSE(reaches("10.5.1.1"));
  EXPECT_FALSE(reaches("fd00:5::b"));
  EXPECT_TRUE(reaches("fd00:5::a"));
}

TEST_F(BanVmTest, NewBanClosesTheClientsLiveConnection) {
  open_manager();
  int client = connect_from(net_->client_fd(), boost::asio::ip::make_address("10.5.1.1"),
                            boost::asio::ip::make_address(kEdge4), listener_->port(), 1500ms);
  ASSERT_GE(client, 0);
  int served = listener_->accept_one(1500ms);
  ASSERT_GE(served, 0);
  conns::ConnInfo info;
  info.id = registry_.next_id();
  info.client = boost::asio::ip::make_address("::ffff:10.5.1.1");  // as the dual-stack socket saw it
  registry_.add(info, [served] { ::shutdown(served, SHUT_RDWR); });

  auto out = ban("10.5.1.0/24");
  ASSERT_TRUE(out.ok);
  EXPECT_EQ(out.connections_closed, 1u);
  char byte;
  timeval tv{2, 0};
  ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  // The edge's FIN is dropped by nobody (it goes edge -> client); the client sees the end.
  EXPECT_EQ(::recv(client, &byte, 1, 0), 0);
  ::close(client);
  ::close(served);
}

TEST_F(BanVmTest, AcceptTimeCheckAgreesWithTheProgram) {
  open_manager();
  ASSERT_TRUE(ban("10.5.2.0/24").ok);
  ASSERT_TRUE(ban("fd00:5::a").ok);
  using boost::asio::ip::make_address;
  EXPECT_TRUE(manager_->banned(make_address("10.5.2.200")));
  EXPECT_TRUE(manager_->banned(make_address("::ffff:10.5.2.1")));
  EXPECT_TRUE(manager_->banned(make_address("fd00:5::a")));
  EXPECT_FALSE(manager_->banned(make_address("fd00:5::b")));
  EXPECT_FALSE(manager_->banned(make_address("10.5.3.1")));
  EXPECT_EQ(manager_->totals().refused_at_accept, 3u);
}

}  // namespace
}  // namespace snigate::vmtest
