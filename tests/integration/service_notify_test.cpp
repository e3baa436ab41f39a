// systemd's readiness protocol as snigated speaks it (sd_notify(3), Type=notify): the test holds
// the datagram socket NOTIFY_SOCKET names, as the service manager does, and reads what arrives.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <gtest/gtest.h>

#include "integration/harness.h"

namespace snigate::itest {
namespace {

class NotifySocket {
 public:
  explicit NotifySocket(const fs::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      throw std::runtime_error("notify socket: " + std::string(std::strerror(errno)));
  }
  ~NotifySocket() { ::close(fd_); }
  const fs::path& path() const { return path_; }
  // The next datagram within `timeout`, or "(nothing)".
  std::string next(std::chrono::milliseconds timeout = 10s) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return "(nothing)";
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "(nothing)";
  }

 private:
  fs::path path_;
  int fd_ = -1;
};

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(0x7f000301);  // 127.0.3.1
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) throw std::runtime_error("bind");
  const std::uint16_t port = local_port(fd);
  ::close(fd);
  return port;
}

// Answers any request head with a fixed response, then closes.
RawServer::Handler answer(std::string body) {
  return [body](int fd) {
    std::string head;
    char c;
    while (head.find("\r\n\r\n") == std::string::npos && ::recv(fd, &c, 1, 0) == 1) head += c;
    send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n" + body);
  };
}

struct Notified {
  TempDir dir;
  RawServer backend{"127.0.3.1", answer("through")};
  NotifySocket notify{dir / "notify.sock"};
  std::uint16_t port = free_port();
  fs::path config = dir / "snigated.toml";
  std::unique_ptr<Process> daemon;

  Notified() {
    write_file(config, "[daemon]\ncontrol_socket = \"" + (dir / "control.sock").string() +
                           "\"\naccess_log = \"" + (dir / "access.log").string() +
                           "\"\n[bans]\nenabled = false\n"
                           "[[listener]]\nname = \"http\"\nlisten = \"127.0.3.1:" +
                           std::to_string(port) + "\"\nprotocol = \"http\"\ntable = \"t\"\n"
                           "[table.t]\ndefault = \"b\"\n[backend.b]\nservers = [\"127.0.3.1:" +
                           std::to_string(backend.port()) + "\"]\n");
    daemon = std::make_unique<Process>(
        std::vector<std::string>{"env", "NOTIFY_SOCKET=" + notify.path().string(), SNIGATED_PATH,
                                 "-c", config.string()},
        dir / "snigated.log");
  }

  std::string fetch() {
    int fd = connect_to("127.0.3.1", port, {}, 5s);
    send_all(fd, "GET / HTTP/1.1\r\nHost: x.test\r\n\r\n");
    std::string reply = recv_until_eof(fd);
    ::close(fd);
    return reply;
  }
};

TEST(ServiceNotify, ReadyOnlyOnceTheListenerAccepts) {
  Notified n;
  ASSERT_EQ(n.notify.next(), "READY=1") << n.daemon->log();
  // No wait between READY=1 and the connect: a daemon that said it before binding is refused.
  std::string reply;
  ASSERT_NO_THROW(reply = n.fetch()) << n.daemon->log();
  EXPECT_NE(reply.find("through"), std::string::npos) << reply << n.daemon->log();
}

TEST(ServiceNotify, ReloadIsAnnouncedAndStoppingOnSigterm) {
  Notified n;
  ASSERT_EQ(n.notify.next(), "READY=1") << n.daemon->log();

  n.daemon->signal(SIGHUP);
  EXPECT_TRUE(n.notify.next().starts_with("RELOADING=1\nMONOTONIC_USEC=")) << n.daemon->log();
  EXPECT_EQ(n.notify.next(), "READY=1") << n.daemon->log();

  RunResult ctl = run({SNIGATECTL_PATH, "-c", n.config.string(), "reload"});
  EXPECT_EQ(ctl.exit_code, 0) << ctl.output;
  EXPECT_TRUE(n.notify.next().starts_with("RELOADING=1")) << n.daemon->log();
  EXPECT_EQ(n.notify.next(), "READY=1") << n.daemon->log();

  // A refused reload leaves the daemon serving the configuration it had: ready again.
  write_file(n.config, "[daemon\n");
  n.daemon->signal(SIGHUP);
  EXPECT_TRUE(n.notify.next().starts_with("RELOADING=1")) << n.daemon->log();
  EXPECT_EQ(n.notify.next(), "READY=1") << n.daemon->log();
  EXPECT_NE(n.fetch().find("through"), std::string::npos) << n.daemon->log();

  n.daemon->signal(SIGTERM);
  EXPECT_EQ(n.notify.next(), "STOPPING=1") << n.daemon->log();
  EXPECT_EQ(n.daemon->stop(SIGTERM, 15s), 0) << n.daemon->log();
  EXPECT_EQ(n.notify.next(200ms), "(nothing)");
}

}  // namespace
}  // namespace snigate::itest
