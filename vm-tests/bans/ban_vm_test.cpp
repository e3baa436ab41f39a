// Bans enforced by the real XDP program on the edge's veth, BanManager in this process: a
// banned source's SYNs and UDP datagrams are dropped (the ban's drop counter rises), every
// other source still connects and is heard.
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "udp_peers.h"
#include "vm_support.h"

namespace snigate::vmtest {
namespace {

using namespace std::chrono_literals;
using boost::asio::ip::make_address;

TEST_F(BanVmTest, XdpDropsTheBannedAddressOnlyV4AndV6) {
  open_manager();
  ASSERT_EQ(enforcement().size(), 1u);
  EXPECT_EQ(enforcement()[0].rfind(std::string(kEdgeIf) + ": xdp", 0), 0u)
      << enforcement()[0];
  for (const char* a : {kA, kB, kA6, kB6}) EXPECT_TRUE(reaches(a)) << a;

  ASSERT_TRUE(ban(kA).ok);
  ASSERT_TRUE(ban(kA6).ok);
  EXPECT_FALSE(reaches(kA));
  EXPECT_FALSE(reaches(kA6));
  EXPECT_TRUE(reaches(kB));
  EXPECT_TRUE(reaches(kB6));
  EXPECT_GE(drops_of(kA), 1u);
  EXPECT_GE(drops_of(kA6), 1u);
  EXPECT_EQ(drops_of(kB), 0u);
  EXPECT_GE(manager_->totals().dropped, 2u);
  EXPECT_EQ(manager_->totals().refused_at_accept, 0u);  // all of it was the XDP program

  EXPECT_TRUE(manager_->unban(*net::Prefix::parse(kA)));
  EXPECT_TRUE(reaches(kA));
}

// QUIC arrives as UDP: the program drops a banned source's datagrams as it drops its SYNs.
// Each banned datagram is followed by one from an unbanned source on the same link; once that
// one is read, the banned one would have been read before it had it got through.
TEST_F(BanVmTest, XdpDropsTheBannedSourcesUdpV4AndV6) {
  open_manager();
  ASSERT_TRUE(ban(kA).ok);
  ASSERT_TRUE(ban(kA6).ok);
  for (auto [banned, heard, edge] : {std::tuple{kA, kB, net_->v4().edge_front},
                                     std::tuple{kA6, kB6, net_->v6().edge_front}}) {
    UdpSocket server(net_->edge(), edge);
    UdpSocket from_banned(net_->client(), banned);
    UdpSocket from_heard(net_->client(), heard);
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(from_banned.send_to({'b', static_cast<std::uint8_t>(i)}, server.local()));
      ASSERT_TRUE(from_heard.send_to({'h', static_cast<std::uint8_t>(i)}, server.local()));
      auto got = server.receive(std::chrono::milliseconds(1500));
      ASSERT_TRUE(got) << "the unbanned source's datagram " << i << " never arrived";
      EXPECT_TRUE(same_address(got->from, from_heard.local())) << to_string(got->from);
      EXPECT_EQ(got->bytes, (std::vector<std::uint8_t>{'h', static_cast<std::uint8_t>(i)}));
    }
    EXPECT_EQ(server.drain(), 0u);
    EXPECT_GE(drops_of(banned), 3u) << banned;
  }
  EXPECT_EQ(drops_of(kB), 0u);
}

TEST_F(BanVmTest, CidrBanCoversItsPrefix) {
  open_manager();
  ASSERT_TRUE(ban(kNet).ok);
  EXPECT_FALSE(reaches(kN1));
  EXPECT_FALSE(reaches(kN2));
  EXPECT_TRUE(reaches(kA));
  EXPECT_GE(drops_of(kNet), 2u);
}

TEST_F(BanVmTest, TwoSecondBanLiftsOnTimeAndIsSwept) {
  open_manager();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(ban(kB, 2s).ok);
  EXPECT_TRUE(manager_->banned(make_address(kB)));
  EXPECT_FALSE(reaches(kB));  // takes up to 1.5 s
  std::this_thread::sleep_until(start + 2100ms);
  EXPECT_FALSE(manager_->banned(make_address(kB)));
  EXPECT_TRUE(reaches(kB));
  // The sweeper (every second) removes it from the map and the list.
  std::this_thread::sleep_until(start + 3500ms);
  EXPECT_TRUE(manager_->list().empty());
  EXPECT_EQ(manager_->totals().active, 0u);
}

TEST_F(BanVmTest, BanSurvivesARestartAndThePinsBeingRemoved) {
  open_manager();
  ASSERT_TRUE(ban(kA, 1h).ok);
  ASSERT_TRUE(ban(kB6).ok);
  EXPECT_FALSE(reaches(kA));
  const auto drops = drops_of(kA);

  close_manager();  // clean exit: XDP detached, pins kept
  open_manager();
  EXPECT_EQ(manager_->reconciled().in_sync, 2u);
  EXPECT_EQ(manager_->reconciled().restored_to_map, 0u);
  EXPECT_EQ(drops_of(kA), drops);  // the very same map entries
  EXPECT_FALSE(reaches(kA));
  EXPECT_FALSE(reaches(kB6));
  EXPECT_TRUE(reaches(kB));

  close_manager();
  std::filesystem::remove_all(cfg_.pin_dir);  // as after a reboot
  open_manager();
  EXPECT_EQ(manager_->reconciled().restored_to_map, 2u);
  EXPECT_FALSE(reaches(kA));
  EXPECT_FALSE(reaches(kB6));
  EXPECT_TRUE(reaches(kA6));
}

TEST_F(BanVmTest, NewBanClosesTheClientsLiveConnection) {
  open_manager();
  int client = connect_from(net_->client(), make_address(kN1), make_address(edge_for(kN1)),
                            listener_->port(), 1500ms);
  ASSERT_GE(client, 0);
  int served = listener_->accept_one(1500ms);
  ASSERT_GE(served, 0);
  conns::ConnInfo info;
  info.id = registry_.next_id();
  info.client = make_address(std::string("::ffff:") + kN1);  // as the dual-stack socket saw it
  registry_.add(info, [served](conns::KillReason) { ::shutdown(served, SHUT_RDWR); });

  auto out = ban(kNet);
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
  ASSERT_TRUE(ban(kNet).ok);
  ASSERT_TRUE(ban(kA6).ok);
  EXPECT_TRUE(manager_->banned(make_address("10.5.1.31")));
  EXPECT_TRUE(manager_->banned(make_address(std::string("::ffff:") + kN2)));
  EXPECT_TRUE(manager_->banned(make_address(kA6)));
  EXPECT_FALSE(manager_->banned(make_address(kB6)));
  EXPECT_FALSE(manager_->banned(make_address("10.5.1.32")));
  EXPECT_EQ(manager_->totals().refused_at_accept, 3u);
}

}  // namespace
}  // namespace snigate::vmtest
