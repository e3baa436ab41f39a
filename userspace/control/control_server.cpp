#include "control/control_server.h"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <utility>  // before boost/asio/awaitable.hpp (Boost 1.74)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "control/protocol.h"
#include "net/accept_backoff.h"

namespace snigate::control {

namespace asio = boost::asio;
using asio::local::stream_protocol;
using nlohmann::json;

struct ControlServer::State {
  State(asio::io_context& io, ControlHandlers h, ControlOptions o)
      : handlers(std::move(h)), options(o), acceptor(io) {}
  ControlHandlers handlers;
  ControlOptions options;
  stream_protocol::acceptor acceptor;
  std::set<std::shared_ptr<stream_protocol::socket>> clients;
  net::ThrottledWarning accept_failures;
  // Connections turned away and requests answered ok=false, for the metrics.
  std::atomic<std::uint64_t> refused{0};
  void count_refusal() { refused.fetch_add(1, std::memory_order_relaxed); }
};

namespace {

// One line of reply, invalid UTF-8 (a log sample line, say) replaced rather than thrown.
std::string encode(const json& reply) {
  return reply.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

asio::awaitable<void> session(std::shared_ptr<ControlServer::State> state,
                              std::shared_ptr<stream_protocol::socket> socket) {
  std::string buffer;
  for (;;) {
    boost::system::error_code ec;
    std::size_t n = co_await asio::async_read_until(*socket, asio::dynamic_buffer(buffer, kMaxLine),
                                                    '\n', asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::not_found) {
      state->count_refusal();
      auto reply = encode(error_reply("request line longer than " + std::to_string(kMaxLine) + " bytes"));
      co_await asio::async_write(*socket, asio::buffer(reply), asio::redirect_error(asio::use_awaitable, ec));
      break;
    }
    if (ec) break;
    std::string line = buffer.substr(0, n - 1);
    buffer.erase(0, n);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const json answer = handle_request(state->handlers, line);
    if (!answer.value("ok", false)) state->count_refusal();
    auto reply = encode(answer);
    co_await asio::async_write(*socket, asio::buffer(reply), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
  }
  boost::system::error_code ignored;
  socket->close(ignored);
  state->clients.erase(socket);
}

asio::awaitable<void> accept_loop(std::shared_ptr<ControlServer::State> state) {
  auto executor = co_await asio::this_coro::executor;
  for (;;) {
    auto socket = std::make_shared<stream_protocol::socket>(executor);
    boost::system::error_code ec;
    co_await state->acceptor.async_accept(*socket, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !state->acceptor.is_open()) co_return;
    if (ec) {
      co_await net::back_off_after_accept_error("control socket", ec, state->accept_failures);
      continue;
    }
    if (state->clients.size() >= state->options.max_clients) {
      state->count_refusal();
      auto reply = encode(error_reply("too many control connections open; try again"));
      asio::write(*socket, asio::buffer(reply), ec);
      continue;
    }
    state->clients.insert(socket);
    asio::co_spawn(executor, session(state, socket), asio::detached);
  }
}

// What is at `path` now, if anything: a live listener is an error, a dead socket is removed.
bool clear_stale(const std::string& path, std::string& error) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? true : (error = path + ": " + std::strerror(errno), false);
  if (!S_ISSOCK(st.st_mode)) {
    error = path + " exists and is not a socket; remove it or set another [daemon] control_socket";
    return false;
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return error = std::string("socket: ") + std::strerror(errno), false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  ::close(fd);
  if (rc == 0) {
    error = "another process (a running snigated?) listens on " + path +
            "; stop it or set another [daemon] control_socket";
    return false;
  }
  if (err != ECONNREFUSED) return error = path + ": " + std::strerror(err), false;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return error = "cannot remove stale socket " + path + ": " + std::strerror(errno), false;
  spdlog::info("control socket: removed stale {} left by an earlier run", path);
  return true;
}

}  // namespace

std::unique_ptr<ControlServer> ControlServer::start(asio::io_context& io, const std::string& path,
                                                    ControlHandlers handlers, std::string& error,
                                                    ControlOptions options) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  // The socket is bound inside a fresh 0700 directory next to `path` ("DIR/.ctl-XXXXXX/s"):
  // nobody can connect before it has its final mode, then it is renamed into place.
  std::string tmp_dir = (parent.empty() ? std::string(".") : parent.string()) + "/.ctl-XXXXXX";
  std::string tmp = tmp_dir + "/s";
  if (path.empty() || tmp.size() >= sizeof(sockaddr_un::sun_path) ||
      path.size() >= sizeof(sockaddr_un::sun_path)) {
    error = "control socket path '" + path + "' is empty or too long (Unix sockets allow " +
            std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes, the directory " +
            std::to_string(sizeof(sockaddr_un::sun_path) - 14) + ")";
    return nullptr;
  }
  std::error_code fs_ec;
  if (!parent.empty() && !std::filesystem::exists(parent, fs_ec)) {
    std::filesystem::create_directories(parent, fs_ec);
    if (fs_ec) {
      error = "cannot create " + parent.string() + " for the control socket: " + fs_ec.message();
      return nullptr;
    }
    std::filesystem::permissions(parent, std::filesystem::perms(0755), fs_ec);
  }
  if (!clear_stale(path, error)) return nullptr;
  if (!::mkdtemp(tmp_dir.data())) {
    error = "cannot create a temporary directory in " + parent.string() +
            " for the control socket: " + std::strerror(errno);
    return nullptr;
  }
  tmp = tmp_dir + "/s";
  auto cleanup = [&] {
    ::unlink(tmp.c_str());
    ::rmdir(tmp_dir.c_str());
  };

  auto state = std::make_shared<State>(io, std::move(handlers), options);
  boost::system::error_code ec;
  state->acceptor.open(stream_protocol(), ec);
  if (!ec) state->acceptor.bind(stream_protocol::endpoint(tmp), ec);
  // Listening before the rename: a client never finds the path refusing connections.
  if (!ec) state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error = "cannot listen on control socket " + path + ": " + ec.message();
    cleanup();
    return nullptr;
  }
  if (::chmod(tmp.c_str(), options.mode) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    error = "cannot set up control socket " + path + ": " + std::strerror(errno);
    cleanup();
    return nullptr;
  }
  ::rmdir(tmp_dir.c_str());
  asio::co_spawn(io, accept_loop(state), asio::detached);
  spdlog::info("control socket: listening on {} (mode {:o})", path, options.mode);
  return std::unique_ptr<ControlServer>(new ControlServer(path, std::move(state)));
}

ControlServer::ControlServer(std::string path, std::shared_ptr<State> state)
    : path_(std::move(path)), state_(std::move(state)) {
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0) {
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
}

std::uint64_t ControlServer::refused() const {
  return state_->refused.load(std::memory_order_relaxed);
}

ControlServer::~ControlServer() {
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
  for (const auto& socket : state_->clients) socket->close(ignored);
  // A newer daemon may have replaced our socket already: remove only the file we created.
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) ::unlink(path_.c_str());
}

}  // namespace snigate::control
