// QUIC through snigated with the kernel path on, real peers from Debian's ngtcp2 packages:
// gtlsclient in the client namespace downloads 200 kB from gtlsserver in the backend
// namespace through a quic listener in the edge namespace (and, second shape, all three on
// the edge's loopback). The transfer must complete byte for byte, the flow's access-log line
// must say the kernel moved it (relay=kernel), and what passed through snigated's own sockets
// must be only the datagrams before the route (packets_in - kernel_packets_in) and at most a
// straggler or two after it.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <regex>

#include <fmt/format.h>

#include "integration/harness.h"
#include "netns.h"

namespace snigate::vmtest {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct Shape {
  const char* name;
  bool veth;
};
void PrintTo(const Shape& s, std::ostream* os) { *os << s.name; }

class QuicKernelVmTest : public ::testing::TestWithParam<Shape> {
 protected:
  void SetUp() override {
    if (auto why = netns_unavailable(); !why.empty())
      GTEST_SKIP() << "SKIPPED LOUDLY: quic kernel vm-tests " << why;
    if (std::system("command -v gtlsserver >/dev/null && command -v gtlsclient >/dev/null") != 0)
      GTEST_SKIP() << "SKIPPED LOUDLY: needs gtlsserver and gtlsclient (ngtcp2-server, "
                      "ngtcp2-client; tools/install-deps.sh)";
    net_.emplace("sg-udp", 8);
    const bool veth = GetParam().veth;
    client_ns_ = veth ? net_->client() : net_->edge();
    backend_ns_ = veth ? net_->backend() : net_->edge();
    listen_ip_ = veth ? net_->v4().edge_front : "127.0.0.1";
    backend_ip_ = veth ? net_->v4().backend : "127.0.0.2";

    fs::create_directories(dir_ / "docs");
    blob_.resize(200000);
    std::mt19937 random(20);
    for (auto& c : blob_) c = static_cast<char>(random());
    itest::write_file(dir_ / "docs" / "blob", blob_);
    const itest::Cert cert = itest::make_cert(dir_, "a.test");
    const std::string port = "4433";
    in_netns(backend_ns_, [&] {
      server_ = std::make_unique<itest::Process>(
          std::vector<std::string>{"setpriv", "--pdeathsig", "KILL", "--", "gtlsserver", "-q",
                                   "-d", (dir_ / "docs").string(), backend_ip_, port,
                                   cert.key.string(), cert.cert.string()},
          dir_ / "gtlsserver.log");
    });
    // gtlsserver -q says nothing once bound: its socket shows in the namespace's table.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!bound(backend_ns_, port) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(bound(backend_ns_, port)) << server_->log();

    const std::string interfaces = veth ? R"(["veth0", "veth1"])" : R"(["lo"])";
    const std::string toml = fmt::format(R"([daemon]
workers = 1
access_log = "@ACCESS_LOG@"
quic_kernel_interfaces = {0}
[[listener]]
name = "h3"
listen = "{1}:0"
protocol = "quic"
table = "edge"
flow_idle_timeout = "1s"
preread_timeout = "2s"
[table.edge]
"localhost" = "a"
[backend.a]
servers = ["{2}:{3}"]
)",
                                         interfaces, listen_ip_, backend_ip_, port);
    in_netns(net_->edge(), [&] { daemon_.emplace(dir_, toml); });
  }

  void TearDown() override {
    if (daemon_) daemon_->process().stop(SIGTERM, 10s);
    daemon_.reset();
    server_.reset();
    net_.reset();
  }

  static bool bound(const std::string& ns, const std::string& port) {
    bool found = false;
    in_netns(ns, [&] {
      std::ifstream udp("/proc/thread-self/net/udp");
      const std::string local = fmt::format(":{:04X} ", std::stoi(port));
      for (std::string line; std::getline(udp, line);) found |= line.find(local) != std::string::npos;
    });
    return found;
  }

  std::optional<Topology> net_;
  itest::TempDir dir_;
  std::string client_ns_, backend_ns_, listen_ip_, backend_ip_, blob_;
  std::unique_ptr<itest::Process> server_;
  std::optional<itest::Snigated> daemon_;
};

std::uint64_t field(const std::string& line, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(line, m, std::regex(" " + key + "=(\\d+)"))) return 0;
  return std::stoull(m[1]);
}

TEST_P(QuicKernelVmTest, TransferCompletesWithTheDatagramsMovedByTheKernel) {
  ASSERT_NE(daemon_->process().log().find("quic: routed flows forwarded by the kernel path"),
            std::string::npos)
      << daemon_->process().log();
  const fs::path out = dir_ / "download";
  fs::create_directories(out);
  itest::RunResult r;
  in_netns(client_ns_, [&] {
    // Debian 12's gtlsclient (0.12) sends "localhost" as SNI to an address, --sni or not.
    r = itest::run({"gtlsclient", "-q", "--exit-on-all-streams-close", "--timeout=3s",
                    "--download=" + out.string(), listen_ip_,
                    std::to_string(daemon_->port("h3")), "https://a.test/blob"},
                   {}, 30s);
  });
  EXPECT_EQ(r.exit_code, 0) << r.output;
  ASSERT_TRUE(fs::exists(out / "blob")) << r.output << daemon_->process().log();
  EXPECT_TRUE(itest::read_file(out / "blob") == blob_) << "the download differs from the blob";

  const std::string line =
      daemon_->wait_access(std::regex(R"(name=localhost .*backend=a .*relay=kernel end=timeout .*)"));
  ASSERT_NE(line, "") << daemon_->access_log() << daemon_->process().log();
  const auto in = field(line, "packets_in"), out_packets = field(line, "packets_out");
  const auto kernel_in = field(line, "kernel_packets_in"),
             kernel_out = field(line, "kernel_packets_out");
  // 200 kB back to the client: well over 100 datagrams (at most 1452 bytes each), every one
  // moved by the kernel.
  EXPECT_GT(kernel_out, 100u) << line;
  EXPECT_GT(kernel_in, 10u) << line;
  EXPECT_GE(field(line, "out"), blob_.size()) << line;
  // Userspace: the client's first flight (held until routed), a straggler at most after it.
  EXPECT_GE(in - kernel_in, 1u) << line;
  EXPECT_LE(in - kernel_in, 4u) << line;
  EXPECT_LE(out_packets - kernel_out, 2u) << line;
}

INSTANTIATE_TEST_SUITE_P(Shapes, QuicKernelVmTest,
                         ::testing::Values(Shape{"Veth", true}, Shape{"Loopback", false}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace snigate::vmtest
