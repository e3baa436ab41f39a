#include "control/control_client.h"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>


namespace snigate::control {

namespace {

using Clock = std::chrono::steady_clock;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Waits until `fd` is ready for `events` or the deadline passes.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

}  // namespace

ControlClient::ControlClient(std::string path, std::chrono::milliseconds timeout)
    : path_(std::move(path)), timeout_(timeout) {}

std::optional<nlohmann::json> ControlClient::request(const nlohmann::json& req,
                                                     std::string& error) const {
  auto unreachable = [&](const std::string& why) {
    error = "cannot reach snigated at " + path_ + ": " + why + " (is it running? --socket?)";
    return std::nullopt;
  };
  sockaddr_un addr{};
  if (path_.size() >= sizeof(addr.sun_path)) return unreachable("socket path too long");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.data(), path_.size());

  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return unreachable(std::strerror(errno));
  auto deadline = Clock::now() + timeout_;
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    // A Unix socket whose backlog is full answers EAGAIN; anything else is final.
    if (errno != EAGAIN) return unreachable(std::strerror(errno));
    if (!wait_for(fd.get(), POLLOUT, deadline)) return unreachable("timed out connecting");
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return unreachable(std::strerror(err));
  }

  std::string out = req.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  for (std::size_t sent = 0; sent < out.size();) {
    ssize_t n = ::send(fd.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd.get(), POLLOUT, deadline))
        return error = "snigated at " + path_ + " did not take the request in time", std::nullopt;
    } else {
      return error = "lost the connection to snigated at " + path_ + ": " + std::strerror(errno), std::nullopt;
    }
  }

  // A ban list can be large (100,000 bans are some 25 MB): no small cap on the reply.
  constexpr std::size_t kMaxReply = std::size_t{1} << 30;
  std::string in;
  std::size_t newline = std::string::npos;
  char buf[65536];
  while (newline == std::string::npos) {
    if (in.size() > kMaxReply) return error = "snigated's reply is too long", std::nullopt;
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n > 0) {
      in.append(buf, static_cast<std::size_t>(n));
      newline = in.find('\n', in.size() - static_cast<std::size_t>(n));
    } else if (n == 0) {
      return error = "snigated at " + path_ + " closed the connection without a reply", std::nullopt;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait_for(fd.get(), POLLIN, deadline))
        return error = "snigated at " + path_ + " did not answer within " +
                       std::to_string(timeout_.count()) + " ms", std::nullopt;
    } else {
      return error = "lost the connection to snigated at " + path_ + ": " + std::strerror(errno), std::nullopt;
    }
  }
  in.resize(newline);
  auto reply = nlohmann::json::parse(in, nullptr, false);
  if (reply.is_discarded() || !reply.is_object())
    return error = "snigated at " + path_ + " answered something that is not a JSON object", std::nullopt;
  return reply;
}

}  // namespace snigate::control
