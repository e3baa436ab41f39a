#include "integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <mutex>
#include <stdexcept>

extern char** environ;

namespace snigate::itest {

namespace {

std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

// Spawns argv with stdin from `in_fd` and stdout+stderr to `out_fd`. Under setpriv's
// parent-death signal: if the test process dies (crash, ctest timeout), its snigated, s_server
// and clients die with it instead of staying bound. Tests spawn from their main thread, whose
// exit is what the signal follows.
pid_t spawn(const std::vector<std::string>& command, int in_fd, int out_fd) {
  std::vector<std::string> argv{"setpriv", "--pdeathsig", "KILL", "--"};
  argv.insert(argv.end(), command.begin(), command.end());
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 2);
  pid_t pid = -1;
  auto args = c_argv(argv);
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot run " + command[0] + ": " + std::strerror(rc));
  return pid;
}

void set_timeout(int fd, std::chrono::milliseconds t) {
  timeval tv{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>(t.count() % 1000 * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

sockaddr_in v4(const std::string& ip, std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (inet_pton(AF_INET, ip.c_str(), &sa.sin_addr) != 1) throw std::runtime_error("bad ip " + ip);
  return sa;
}

}  // namespace

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "snigate-itest-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

RunResult run(const std::vector<std::string>& argv, const std::string& input,
              std::chrono::milliseconds timeout) {
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC)) throw std::runtime_error("pipe");
  pid_t pid = spawn(argv, in_pipe[0], out_pipe[1]);
  close(in_pipe[0]);
  close(out_pipe[1]);
  // Small inputs only (commands and request lines): they fit the pipe buffer.
  if (!input.empty()) (void)!write(in_pipe[1], input.data(), input.size());
  close(in_pipe[1]);
  RunResult r;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      break;
    }
    pollfd p{out_pipe[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = read(out_pipe[0], buf, sizeof buf);
    if (n <= 0) break;
    r.output.append(buf, static_cast<std::size_t>(n));
  }
  close(out_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

Process::Process(const std::vector<std::string>& argv, fs::path log) : log_(std::move(log)) {
  int out = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_ = spawn(argv, in, out);
  close(out);
  close(in);
}

Process::~Process() {
  if (alive()) stop(SIGKILL, 5s);
}

bool Process::alive() {
  if (status_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) status_ = status;
  return !status_;
}

void Process::signal(int sig) {
  if (alive()) kill(pid_, sig);
}

int Process::stop(int sig, std::chrono::milliseconds timeout) {
  signal(sig);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (alive() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  if (alive()) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    status_ = status;
    return -1;
  }
  return WIFEXITED(*status_) ? WEXITSTATUS(*status_) : -1;
}

std::optional<std::smatch> Process::wait_for(const std::regex& pattern,
                                             std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    last_log_ = log();
    std::smatch m;
    if (std::regex_search(last_log_, m, pattern)) return m;
    if (std::chrono::steady_clock::now() >= deadline || !alive()) return std::nullopt;
    std::this_thread::sleep_for(20ms);
  }
}

std::size_t open_descriptors(pid_t pid, const std::string& kind) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec))
    if (fs::read_symlink(it->path(), ec).string().rfind(kind, 0) == 0) ++n;
  return n;
}

Cert make_cert(const TempDir& dir, const std::string& cn) {
  Cert c{dir / (cn + ".crt"), dir / (cn + ".key")};
  RunResult r = run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + cn,
                     "-keyout", c.key.string(), "-out", c.cert.string()});
  if (r.exit_code != 0) throw std::runtime_error("openssl req failed: " + r.output);
  return c;
}

TlsBackend::TlsBackend(const TempDir& dir, const std::string& cn) {
  Cert c = make_cert(dir, cn);
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"openssl", "s_server", "-accept", "127.0.3.1:0", "-cert",
                               c.cert.string(), "-key", c.key.string(), "-www"},
      dir / (cn + ".s_server.log"));
  auto m = process_->wait_for(std::regex(R"(ACCEPT 127\.0\.3\.1:(\d+))"));
  if (!m) throw std::runtime_error("openssl s_server did not start: " + process_->log());
  port_ = static_cast<std::uint16_t>(std::stoi((*m)[1]));
}

RawServer::RawServer(const std::string& ip, Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = v4(ip, 0);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) || listen(listen_fd_, 64))
    throw std::runtime_error(std::string("raw server: ") + std::strerror(errno));
  port_ = local_port(listen_fd_);
  accept_thread_ = std::thread([this] {
    for (;;) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;  // shut down by the destructor
      set_timeout(fd, 60s);
      conns_.emplace_back([this, fd] {
        handler_(fd);
        close(fd);
      });
    }
  });
}

RawServer::~RawServer() {
  shutdown(listen_fd_, SHUT_RDWR);
  accept_thread_.join();
  close(listen_fd_);
  for (auto& t : conns_) t.join();
}

int connect_to(const std::string& ip, std::uint16_t port, const std::string& source_ip,
               std::chrono::milliseconds timeout) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (!source_ip.empty()) {
    sockaddr_in src = v4(source_ip, 0);
    if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src))
      throw std::runtime_error(std::string("bind source: ") + std::strerror(errno));
  }
  set_timeout(fd, timeout);
  sockaddr_in sa = v4(ip, port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa)) {
    close(fd);
    throw std::runtime_error(std::string("connect: ") + std::strerror(errno));
  }
  return fd;
}

bool send_all(int fd, const void* data, std::size_t size) {
  auto p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = send(fd, p, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool send_all(int fd, const std::string& data) { return send_all(fd, data.data(), data.size()); }

std::string recv_until_eof(int fd, std::size_t max) {
  std::string out;
  char buf[16384];
  while (out.size() < max) {
    ssize_t n = recv(fd, buf, std::min(sizeof buf, max - out.size()), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::uint16_t local_port(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

std::string capture_client_hello(const std::string& name, const std::string& alpn) {
  std::string hello;
  std::mutex mu;
  {
    RawServer capture("127.0.3.1", [&](int fd) {
      // One TLS record: 5-byte header, then its length. openssl's hello fits one record.
      std::string got;
      char buf[4096];
      auto record_end = [&] {
        return 5u + ((std::size_t{static_cast<unsigned char>(got[3])} << 8) |
                     static_cast<unsigned char>(got[4]));
      };
      while (got.size() < 5 || got.size() < record_end()) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
      }
      std::lock_guard lock(mu);
      hello = got;
    });
    std::vector<std::string> argv{"openssl", "s_client", "-connect",
                                  "127.0.3.1:" + std::to_string(capture.port())};
    if (name.empty())
      argv.push_back("-noservername");
    else
      argv.insert(argv.end(), {"-servername", name});
    if (!alpn.empty()) argv.insert(argv.end(), {"-alpn", alpn});
    run(argv, {}, 10s);
  }
  return hello;
}

std::string http_config(std::uint16_t port, const std::string& daemon_extra) {
  return "[daemon]\naccess_log = \"@ACCESS_LOG@\"\n" + daemon_extra +
         "\n[[listener]]\nname = \"http\"\nlisten = \"127.0.3.1:0\"\nprotocol = \"http\"\n"
         "table = \"t\"\n[table.t]\ndefault = \"b\"\n[backend.b]\nservers = [\"127.0.3.1:" +
         std::to_string(port) + "\"]\n";
}

Snigated::Snigated(const TempDir& dir, const std::string& toml,
                   const std::vector<std::string>& extra_args,
                   const std::vector<std::string>& launcher)
    : config_(dir / "snigated.toml"), access_log_(dir / "access.log") {
  std::string text = toml;
  for (auto at = text.find("@ACCESS_LOG@"); at != std::string::npos;
       at = text.find("@ACCESS_LOG@"))
    text.replace(at, 12, access_log_.string());
  // Each daemon gets its own control socket and no ban subsystem unless the test sets them: the
  // defaults (/run/snigate/control.sock, /var/lib/snigate/bans.db, maps pinned under
  // /sys/fs/bpf) are the machine's own, and tests running side by side would share them.
  if (text.find("control_socket") == std::string::npos) {
    const std::string line = "control_socket = \"" + (dir / "control.sock").string() + "\"\n";
    if (auto at = text.find("[daemon]\n"); at != std::string::npos)
      text.insert(at + 9, line);
    else
      text = "[daemon]\n" + line + text;
  }
  if (text.find("[bans]") == std::string::npos) text += "\n[bans]\nenabled = false\n";
  write_file(config_, text);
  start(dir / "snigated.log", launcher, extra_args);
}

Snigated::Snigated(const fs::path& config, fs::path log, const std::vector<std::string>& launcher,
                   const std::vector<std::string>& extra_args)
    : config_(config) {
  start(log.empty() ? config.parent_path() / "snigated.log" : log, launcher, extra_args);
}

void Snigated::start(const fs::path& log, const std::vector<std::string>& launcher,
                     const std::vector<std::string>& extra_args) {
  std::vector<std::string> argv = launcher;
  argv.insert(argv.end(), {SNIGATED_PATH, "-c", config_.string()});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<Process>(argv, log);
  // The ready line comes once the listeners and the subsystems (control socket, bans, jails)
  // are all up, so a test may use any of them at once.
  auto m = process_->wait_for(std::regex(R"(snigated ready \(pid \d+\); bound:([^\n]*))"),
                              20s);
  if (!m) throw std::runtime_error("snigated did not get ready:\n" + process_->log());
  std::istringstream words((*m)[1].str());
  for (std::string word; words >> word;) {
    auto eq = word.find('='), colon = word.rfind(':');
    if (eq == std::string::npos || colon == std::string::npos || colon < eq)
      throw std::runtime_error("bad entry '" + word + "' in the ready line");
    ports_[word.substr(0, eq)] = static_cast<std::uint16_t>(std::stoi(word.substr(colon + 1)));
  }
}

std::uint16_t Snigated::port(const std::string& name) const {
  auto it = ports_.find(name);
  if (it == ports_.end())
    throw std::runtime_error("snigated's ready line names no '" + name + "':\n" + process_->log());
  return it->second;
}

std::uint16_t Snigated::port_or_zero(const std::string& name) const {
  auto it = ports_.find(name);
  return it == ports_.end() ? 0 : it->second;
}

std::string Snigated::wait_access(const std::regex& pattern,
                                  std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::istringstream lines(access_log());
    for (std::string line; std::getline(lines, line);)
      if (std::regex_search(line, pattern)) return line;
    if (std::chrono::steady_clock::now() >= deadline) return {};
    std::this_thread::sleep_for(20ms);
  }
}

std::string s_client_subject(std::uint16_t port, const std::string& servername,
                             const std::string& alpn) {
  std::vector<std::string> argv{"openssl", "s_client", "-connect",
                                "127.0.3.1:" + std::to_string(port)};
  if (!alpn.empty()) argv.insert(argv.end(), {"-alpn", alpn});
  if (servername.empty())
    argv.push_back("-noservername");
  else
    argv.insert(argv.end(), {"-servername", servername});
  RunResult r = run(argv, "", 15s);
  std::smatch m;
  if (std::regex_search(r.output, m, std::regex(R"(subject=CN\s*=\s*(\S+))"))) return m[1];
  return r.output;
}

}  // namespace snigate::itest
