// QUIC through a quic listener, with real QUIC peers from Debian's ngtcp2 packages: gtlsserver
// backends, each with its own certificate and its own documents, and gtlsclient downloading
// through snigated. What a backend served says which one the flow reached.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include <fmt/format.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

// A UDP port free on `ip` now, for a server that takes its port on the command line.
std::uint16_t free_udp_port(const std::string& ip) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("no free UDP port");
  close(fd);
  return ntohs(a.sin_port);
}

// Whether a UDP socket is bound to ip:port, from /proc/net/udp (gtlsserver -q says nothing).
bool udp_bound(const std::string& ip, std::uint16_t port) {
  in_addr a{};
  inet_pton(AF_INET, ip.c_str(), &a);
  const std::string local = fmt::format("{:08X}:{:04X}", a.s_addr, port);
  std::ifstream in("/proc/net/udp");
  for (std::string line; std::getline(in, line);)
    if (line.find(local) != std::string::npos) return true;
  return false;
}

// gtlsserver on `ip` serving `who` (its name) and `blob` (200 kB of random bytes) from
// documents of its own, with a certificate whose CN is `cn`. `retry`: address validation on,
// so every client first gets a Retry packet.
class QuicBackend {
 public:
  QuicBackend(const TempDir& dir, const std::string& ip, const std::string& cn, bool retry = false)
      : docs_(dir / ("docs-" + cn)) {
    fs::create_directories(docs_);
    write_file(docs_ / "who", cn + "\n");
    std::string blob(200000, '\0');
    std::mt19937 random(std::hash<std::string>{}(cn));
    for (auto& c : blob) c = static_cast<char>(random());
    write_file(docs_ / "blob", blob);
    Cert cert = make_cert(dir, cn);
    port_ = free_udp_port(ip);
    std::vector<std::string> argv{"gtlsserver", "-q", "-d", docs_.string()};
    if (retry) argv.push_back("-V");
    argv.insert(argv.end(), {ip, std::to_string(port_), cert.key.string(), cert.cert.string()});
    process_ = std::make_unique<Process>(argv, dir / (cn + ".gtlsserver.log"));
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!udp_bound(ip, port_) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    if (!udp_bound(ip, port_)) throw std::runtime_error("gtlsserver did not bind: " + process_->log());
  }
  std::uint16_t port() const { return port_; }
  std::string blob() const { return read_file(docs_ / "blob"); }

 private:
  fs::path docs_;
  std::uint16_t port_ = 0;
  std::unique_ptr<Process> process_;
};

struct Fetch {
  int exit_code = -1;
  std::string who;       // what the backend's /who said, "" when nothing arrived
  std::string blob;
  std::string output;
};

// gtlsclient through 127.0.3.1:port with SNI `name`: GET /who and, unless `verbose` (which
// prints every packet), /blob; bounded by `timeout`.
Fetch fetch(const TempDir& dir, std::uint16_t port, const std::string& name,
            std::chrono::milliseconds timeout = 15s, bool verbose = false) {
  static int n = 0;
  const fs::path out = dir / fmt::format("download-{}", ++n);
  fs::create_directories(out);
  // gtlsclient sends its HOST as SNI ("localhost" for an address; its --sni is ignored by the
  // GnuTLS build): the name resolves to snigated through an /etc/hosts of its own, bound in a
  // mount namespace of an unprivileged user namespace.
  const fs::path hosts = dir / fmt::format("hosts-{}", n);
  write_file(hosts, "127.0.3.1 " + name + "\n");
  std::vector<std::string> argv{
      "unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
      "mount --bind \"$0\" /etc/hosts && exec \"$@\"", hosts.string(),
      "gtlsclient", "--exit-on-all-streams-close", "--timeout=3s",
      "--download=" + out.string(), name, std::to_string(port), "https://" + name + "/who"};
  if (!verbose) argv.push_back("https://" + name + "/blob"), argv.push_back("-q");
  RunResult r = run(argv, {}, timeout);
  Fetch f{r.exit_code, {}, {}, r.output};
  if (fs::exists(out / "who")) f.who = read_file(out / "who");
  if (fs::exists(out / "blob")) f.blob = read_file(out / "blob");
  return f;
}

class Quic : public ::testing::Test {
 protected:
  TempDir dir;
  QuicBackend a{dir, "127.0.3.2", "a.test"}, b{dir, "127.0.3.3", "b.test"},
      fallback{dir, "127.0.3.4", "default.test"}, retrying{dir, "127.0.3.5", "retry.test", true};

  // Listener "h3" routes like the TCP tests' tables, with a default; "strict" has none.
  std::string config(const std::string& extra = {}, const std::string& idle = "1s") const {
    return fmt::format(R"(
[daemon]
workers = 2
access_log = "@ACCESS_LOG@"
[[listener]]
name = "h3"
listen = "127.0.3.1:0"
protocol = "quic"
table = "edge"
flow_idle_timeout = "{5}"
preread_timeout = "1s"
[[listener]]
name = "strict"
listen = "127.0.3.1:0"
protocol = "quic"
table = "strict"
flow_idle_timeout = "{5}"
preread_timeout = "1s"
[table.edge]
"a.test" = "a"
"*.b.test" = "b"
"retry.test" = "retrying"
default = "fallback"
[table.strict]
"a.test" = "a"
[backend.a]
servers = ["127.0.3.2:{0}"]
[backend.b]
servers = ["127.0.3.3:{1}"]
[backend.fallback]
servers = ["127.0.3.4:{2}"]
[backend.retrying]
servers = ["127.0.3.5:{4}"]
{3})",
                       a.port(), b.port(), fallback.port(), extra, retrying.port(), idle);
  }
};

TEST_F(Quic, EachNameReachesItsBackendAndTheTransferCompletes) {
  Snigated d(dir, config());
  Fetch fa = fetch(dir, d.port("h3"), "a.test");
  EXPECT_EQ(fa.exit_code, 0) << fa.output << d.process().log();
  EXPECT_EQ(fa.who, "a.test\n");
  EXPECT_TRUE(fa.blob == a.blob()) << "blob of " << fa.blob.size() << " bytes";
  Fetch fb = fetch(dir, d.port("h3"), "www.b.test");
  EXPECT_EQ(fb.exit_code, 0) << fb.output;
  EXPECT_EQ(fb.who, "b.test\n");
  EXPECT_TRUE(fb.blob == b.blob()) << "blob of " << fb.blob.size() << " bytes";
  // One line per flow once idle: name, ALPN, backend, the bytes and datagrams each way.
  const std::string line = d.wait_access(std::regex(
      R"(client=127\.0\.0\.1:\d+ peer=127\.0\.0\.1:\d+ listener=h3 name=a\.test alpn=\S+ )"
      R"(backend=a upstream=127\.0\.3\.2:\d+ in=[1-9]\d* out=[2-9]\d{5,} connect_ms=[0-9.]+ )"
      R"(duration_ms=[0-9.]+ relay=udp end=timeout rule=exact packets_in=[1-9]\d* )"
      R"(packets_out=[1-9]\d*$)"));
  EXPECT_NE(line, "") << d.access_log();
  EXPECT_NE(d.wait_access(std::regex(R"(name=www\.b\.test .*backend=b .*end=timeout rule=\*\.b\.test )")),
            "")
      << d.access_log();
}

TEST_F(Quic, UnknownNameTakesTheDefaultOrIsDroppedWithoutOne) {
  Snigated d(dir, config());
  Fetch f = fetch(dir, d.port("h3"), "unknown.example");
  EXPECT_EQ(f.exit_code, 0) << f.output;
  EXPECT_EQ(f.who, "default.test\n");
  EXPECT_NE(d.wait_access(std::regex(R"(name=unknown\.example .*backend=fallback .*rule=default )")),
            "")
      << d.access_log();
  // No default: as on TCP, nothing reaches any backend, and the flow's one line says why.
  Fetch none = fetch(dir, d.port("strict"), "unknown.example", 10s);
  // gtlsclient gives up when its idle timeout passes without an answer (and exits 0).
  EXPECT_NE(none.output.find("ERR_IDLE_CLOSE"), std::string::npos) << none.output;
  EXPECT_EQ(none.who, "");
  const std::string dropped = d.wait_access(std::regex(R"(listener=strict name=unknown\.example .*end=no_route)"));
  EXPECT_NE(dropped, "") << d.access_log();
  EXPECT_NE(dropped.find("backend=- upstream=-"), std::string::npos) << dropped;
  // The client's retransmitted Initials are swallowed by the dropped flow, not each a line.
  // A flow writes its line when it leaves the registry: once `snigatectl conns` lists no flow
  // of "strict", and the daemon has stopped (which flushes the log), every line is written.
  bool live = true;
  for (auto until = std::chrono::steady_clock::now() + 5s;
       live && std::chrono::steady_clock::now() < until;) {
    RunResult c = run({SNIGATECTL_PATH, "-c", d.config_path().string(), "conns", "--json"});
    ASSERT_EQ(c.exit_code, 0) << c.output;
    live = c.output.find("\"strict\"") != std::string::npos;
    if (live) std::this_thread::sleep_for(50ms);
  }
  ASSERT_FALSE(live) << "a flow of listener strict outlived its 1 s idle timeout";
  ASSERT_EQ(d.stop(), 0) << d.log();
  std::size_t lines = 0;
  std::istringstream log(d.access_log());
  for (std::string l; std::getline(log, l);) lines += l.find("listener=strict") != std::string::npos;
  EXPECT_LE(lines, 3u) << d.access_log();
}

// A server validating addresses answers the first Initial with a Retry; the client's second
// Initial, with the token, comes from the same address and port: the routed flow carries both.
TEST_F(Quic, RetryFromTheBackendReachesTheClient) {
  Snigated d(dir, config());
  Fetch f = fetch(dir, d.port("h3"), "retry.test", 15s, /*verbose=*/true);
  EXPECT_EQ(f.exit_code, 0) << d.access_log();
  EXPECT_EQ(f.who, "retry.test\n");
  EXPECT_NE(f.output.find("type=Retry"), std::string::npos) << "no Retry seen by the client";
}

TEST_F(Quic, ConnsListsTheFlowAndABanDropsTheClient) {
  const std::string bans = fmt::format("[bans]\nstore = \"{}\"\npin_dir = \"{}\"\n",
                                       (dir / "bans.db").string(), (dir / "pins").string());
  Snigated d(dir, config(bans, "5s"));
  auto ctl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {SNIGATECTL_PATH, "-c", d.config_path().string()});
    return run(args);
  };
  Fetch f = fetch(dir, d.port("h3"), "a.test");
  ASSERT_EQ(f.who, "a.test\n") << f.output;
  // Routed and not yet idle: listed as a quic flow with its name, backend and bytes.
  RunResult conns = ctl({"conns"});
  EXPECT_EQ(conns.exit_code, 0) << conns.output;
  EXPECT_NE(conns.output.find("quic forwarding"), std::string::npos) << conns.output;
  EXPECT_NE(conns.output.find("a.test"), std::string::npos) << conns.output;

  // gtlsclient sends from 127.0.0.1 (the loopback route's source).
  RunResult ban = ctl({"ban", "127.0.0.1", "--reason", "quic test"});
  ASSERT_EQ(ban.exit_code, 0) << ban.output;
  // The live flow ends at once, banned.
  EXPECT_NE(d.wait_access(std::regex(R"(name=a\.test .*backend=a .*end=banned)")), "")
      << d.access_log();
  Fetch banned = fetch(dir, d.port("h3"), "a.test", 10s);
  EXPECT_NE(banned.output.find("ERR_IDLE_CLOSE"), std::string::npos) << banned.output;
  EXPECT_EQ(banned.who, "");
  EXPECT_NE(d.wait_access(std::regex(R"(listener=h3 name=- alpn=- backend=- .*end=banned)")), "")
      << d.access_log();
}

}  // namespace
}  // namespace snigate::itest
