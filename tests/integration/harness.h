#pragma once
// Loopback integration harness: runs the real snigated, openssl and curl as child processes,
// plus small raw TCP peers, all on 127.0.3.0/24 with ephemeral ports. Every wait is bounded.
#include <sys/types.h>

#include <csignal>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace snigate::itest {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A directory removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

std::string read_file(const fs::path& path);
void write_file(const fs::path& path, const std::string& text);

struct RunResult {
  int exit_code = -1;   // -1: killed at the timeout
  std::string output;   // stdout and stderr together
};
// Runs argv to completion, feeding `input` on stdin, killed after `timeout`.
RunResult run(const std::vector<std::string>& argv, const std::string& input = {},
              std::chrono::milliseconds timeout = 20s);

// A background process whose stdout and stderr go to a log file.
class Process {
 public:
  Process(const std::vector<std::string>& argv, fs::path log);
  ~Process();  // SIGKILL if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool alive();
  // Sends `sig` and waits up to `timeout` for the exit; returns the exit status, or -1.
  int stop(int sig, std::chrono::milliseconds timeout);
  void signal(int sig);
  std::string log() const { return read_file(log_); }
  // First match of `pattern` in the log within `timeout`: the capture groups (or the match).
  std::optional<std::smatch> wait_for(const std::regex& pattern,
                                      std::chrono::milliseconds timeout = 10s);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  fs::path log_;
  std::string last_log_;
};

// Open descriptors of process `pid` whose /proc/PID/fd link starts with `kind` ("socket:",
// "pipe:").
std::size_t open_descriptors(pid_t pid, const std::string& kind);

// A self-signed certificate whose subject CN says which backend answered.
struct Cert {
  fs::path cert, key;
};
Cert make_cert(const TempDir& dir, const std::string& cn);

// `openssl s_server -www` on 127.0.3.1, an ephemeral port, with that certificate.
class TlsBackend {
 public:
  TlsBackend(const TempDir& dir, const std::string& cn);
  std::uint16_t port() const { return port_; }

 private:
  std::unique_ptr<Process> process_;
  std::uint16_t port_ = 0;
};

// A raw TCP listener; each accepted connection runs `handler(fd)` on its own thread. The fd is
// closed after the handler returns.
class RawServer {
 public:
  using Handler = std::function<void(int fd)>;
  RawServer(const std::string& ip, Handler handler);
  ~RawServer();
  std::uint16_t port() const { return port_; }

 private:
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  Handler handler_;
  std::thread accept_thread_;
  std::vector<std::thread> conns_;
};

// Blocking socket helpers with receive timeouts (no test can hang on a read).
int connect_to(const std::string& ip, std::uint16_t port, const std::string& source_ip = {},
               std::chrono::milliseconds timeout = 10s);
bool send_all(int fd, const void* data, std::size_t size);
bool send_all(int fd, const std::string& data);
// Reads until EOF, `max` bytes, or the receive timeout; returns what arrived.
std::string recv_until_eof(int fd, std::size_t max = 1 << 20);
std::uint16_t local_port(int fd);

// A real ClientHello from `openssl s_client -servername NAME -alpn ALPN` (no SNI when name is
// empty), captured once by a raw listener so tests can replay it from an address they choose.
std::string capture_client_hello(const std::string& name, const std::string& alpn);

// The smallest useful snigated config: an http listener on 127.0.3.1 whose table sends every
// request to backend b at 127.0.3.1:`port`. `daemon_extra` is added to [daemon] as written.
std::string http_config(std::uint16_t port, const std::string& daemon_extra = {});

// The one way tests and vm-tests run snigated (SNIGATED_PATH, set on this library). It returns
// once the daemon prints its ready line, "snigated ready (pid N); bound: NAME=ADDRESS:PORT ...",
// and takes every port from that line: listeners by name, remote_ban and metrics.
class Snigated {
 public:
  // A config written to dir/snigated.toml from `toml`, where the test has put real backend
  // ports; @ACCESS_LOG@ becomes dir/access.log. Unless the toml sets them, the daemon gets a
  // control socket in `dir` and [bans] enabled = false.
  Snigated(const TempDir& dir, const std::string& toml, const std::vector<std::string>& extra_args = {},
           const std::vector<std::string>& launcher = {});
  // An existing config file, run as it is. `log`: its output (default: snigated.log beside the
  // config); `launcher` runs snigated ({"ip", "netns", "exec", NS}); `extra_args` follow -c.
  explicit Snigated(const fs::path& config, fs::path log = {},
                    const std::vector<std::string>& launcher = {},
                    const std::vector<std::string>& extra_args = {});
  // A bound port from the ready line: a listener's `name`, "remote_ban" or "metrics".
  std::uint16_t port(const std::string& name) const;
  std::uint16_t port_or_zero(const std::string& name) const;
  // SIGTERM, then the exit status (-1: killed after `timeout`).
  int stop(std::chrono::milliseconds timeout = 10s) { return process_->stop(SIGTERM, timeout); }
  std::string log() const { return process_->log(); }
  Process& process() { return *process_; }
  fs::path config_path() const { return config_; }
  std::string access_log() const { return read_file(access_log_); }
  // First access-log line matching `pattern` within `timeout`, or empty.
  std::string wait_access(const std::regex& pattern, std::chrono::milliseconds timeout = 10s) const;

 private:
  void start(const fs::path& log, const std::vector<std::string>& launcher,
             const std::vector<std::string>& extra_args);

  fs::path config_, access_log_;
  std::unique_ptr<Process> process_;
  std::map<std::string, std::uint16_t> ports_;
};

// Subject CN of the certificate that `openssl s_client` saw through 127.0.3.1:port, or the
// whole output when there was none. `alpn`: protocols to offer ("h2,http/1.1"), none if empty.
std::string s_client_subject(std::uint16_t port, const std::string& servername,
                             const std::string& alpn = {});

}  // namespace snigate::itest
