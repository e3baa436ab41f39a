#pragma once
// The real snigated in the edge namespace with [bans] on the edge's veth and a backend
// listener in the backend namespace, driven by the real snigatectl over the control socket.
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/harness.h"
#include "vm_support.h"

namespace snigate::vmtest {

using namespace std::chrono_literals;

class DaemonBanTest : public BanVmTest {
 protected:
  // Listeners inside the edge namespace, where fixed ports collide with nobody.
  static constexpr unsigned short kPlain = 8080, kProxied = 8081, kPlain6 = 8082;
  static constexpr unsigned short kMetrics = 9100;

  void SetUp() override {
    BanVmTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    backend_.emplace(net_->backend());
    socket_ = store_dir_ + "/control.sock";
    config_ = store_dir_ + "/snigate.toml";
    prepare_store();
    write_config();
    start();
  }

  void TearDown() override {
    stop();
    backend_.reset();
    BanVmTest::TearDown();
  }

  // Where the test puts the store before the first start (default: the scratch directory).
  virtual void prepare_store() {}
  // [daemon] relay, and lines added to [daemon] as written.
  virtual std::string relay() const { return "copy"; }
  virtual std::string daemon_extra() const { return {}; }
  // Sections a derived fixture adds to the daemon's config ([crowdsec]).
  virtual std::string more_config() const { return {}; }

  void write_config() {
    std::ofstream(config_) << R"([daemon]
workers = 1
relay = ")" << relay() << R"("
control_socket = ")" << socket_ << R"("
access_log = "stdout"
)" << daemon_extra() << R"(

[[listener]]
name = "plain"
listen = "0.0.0.0:)" << kPlain << R"("
protocol = "http"
table = "t"

[[listener]]
name = "plain6"
listen = "[::]:)" << kPlain6 << R"("
protocol = "http"
table = "t"

[[listener]]
name = "proxied"
listen = "0.0.0.0:)" << kProxied << R"("
protocol = "http"
table = "t"
proxy_protocol_in = true
trusted_proxies = [")" << kProxy << R"("]

[table.t]
default = "be"

[backend.be]
servers = [")" << net_->v4().backend << ":" << backend_->port() << R"("]
proxy_protocol = "off"

[bans]
interfaces = [")" << kEdgeIf << R"("]
pin_dir = ")" << cfg_.pin_dir << R"("
store = ")" << cfg_.store << R"("
sweep_interval = "1s"

[metrics]
listen = "127.0.0.1:)" << kMetrics << R"("
)" << more_config();
  }

  // GET /metrics from inside the edge namespace: the body, or "" without a 200.
  std::string scrape() {
    using boost::asio::ip::make_address;
    const auto loopback = make_address("127.0.0.1");
    int fd = connect_from(net_->edge(), loopback, loopback, kMetrics, 3s);
    if (fd < 0) return {};
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const std::string request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string reply = itest::recv_until_eof(fd, 4 << 20);
    ::close(fd);
    if (reply.rfind("HTTP/1.1 200 OK\r\n", 0) != 0) return {};
    return reply.substr(reply.find("\r\n\r\n") + 4);
  }

  // Started from inside the edge namespace (not `ip netns exec`: that mounts a fresh /sys,
  // which hides the bpffs at /sys/fs/bpf).
  void start() {
    ++starts_;
    const auto log = store_dir_ + "/snigated." + std::to_string(starts_) + ".log";
    in_netns(net_->edge(), [&] {
      daemon_ = std::make_unique<itest::Snigated>(config_, log);
    });
  }

  // A clean stop (SIGTERM): the daemon detaches its program and keeps the pins.
  int stop() {
    if (!daemon_) return -1;
    int status = daemon_->stop(10s);
    daemon_.reset();
    return status;
  }

  itest::RunResult ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {SNIGATECTL_PATH, "--socket", socket_});
    return itest::run(args, {}, 10s);
  }

  nlohmann::json ctl_json(std::vector<std::string> args) {
    args.push_back("--json");
    auto out = ctl(std::move(args));
    return nlohmann::json::parse(out.output, nullptr, false);
  }

  // The drop counter `snigatectl bans --json` shows for `prefix` (-1: not listed).
  std::int64_t drops(const std::string& prefix) {
    auto list = ctl_json({"bans"});
    if (!list.is_array()) return -1;
    for (const auto& b : list)
      if (b.value("prefix", "") == prefix) return b.value("drops", std::int64_t{0});
    return -1;
  }

  // Bans snigated holds in the map but has not been able to save yet.
  std::int64_t unsaved() {
    auto stats = ctl_json({"stats"});
    if (!stats.is_object() || !stats.contains("bans")) return -1;
    return stats["bans"].value("unsaved", std::int64_t{-1});
  }

  // Polls `condition` every 100 ms for up to `limit`.
  template <typename F>
  static bool eventually(F condition, std::chrono::milliseconds limit = 10s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (condition()) return true;
      if (std::chrono::steady_clock::now() >= end) return false;
      std::this_thread::sleep_for(100ms);
    }
  }

  // A TCP connection from `source` to the daemon's plain listener (v4 or v6).
  bool serves(const char* source) {
    return can_connect(net_->client(), source, edge_for(source), is_v6(source) ? kPlain6 : kPlain);
  }

  // An HTTP request from `source` (with `preamble` first) and the backend's side of it.
  struct Relayed {
    int client = -1;
    int backend = -1;
    ~Relayed() {
      if (client >= 0) ::close(client);
      if (backend >= 0) ::close(backend);
    }
  };
  void request(Relayed& r, const char* source, unsigned short port, const std::string& preamble = {}) {
    using boost::asio::ip::make_address;
    r.client = connect_from(net_->client(), make_address(source), make_address(edge_for(source)),
                            port, 3s);
    if (r.client < 0) return;
    const std::string head = preamble + "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
    ::send(r.client, head.data(), head.size(), MSG_NOSIGNAL);
    r.backend = backend_->accept_one(5s);
  }

  // True when the peer ended the connection (FIN or RST) within `timeout`.
  static bool ended(int fd, std::chrono::milliseconds timeout = 5s) {
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buffer[512];
    for (;;) {
      auto n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
      if (n < 0) return false;  // timed out: still open
    }
  }

  std::string log() const { return daemon_ ? daemon_->log() : std::string(); }

  std::optional<Listener> backend_;
  std::string socket_, config_;
  std::unique_ptr<itest::Snigated> daemon_;
  int starts_ = 0;
};

}  // namespace snigate::vmtest
