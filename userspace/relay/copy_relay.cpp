#include "relay/copy_relay.h"

#include "relay/copy_io.h"
#include "relay/flow.h"

namespace snigate::relay {

namespace {

using boost::system::error_code;

class CopyFlow final : public detail::Flow {
 public:
  using Flow::Flow;

 private:
  std::size_t read(int d, tcp::socket& from, std::size_t max, error_code& ec) override {
    return io_.read(d, from, max, ec);
  }
  std::size_t write(int d, tcp::socket& to, std::size_t held, error_code& ec) override {
    return io_.write(d, to, held, ec);
  }
  void release(int d, bool) override { io_.release(d, options().buffer_bytes); }

  detail::CopyIo io_;
};

}  // namespace

void CopyRelay::start(tcp::socket& client, tcp::socket& upstream, const Options& options,
                      Counters& counters, Done done) {
  counters.mode = Mode::Copy;
  // Set once per socket (asio's flag is read without a system call): sockets the daemon
  // made itself are born non-blocking (net/nonblocking_socket.h).
  boost::system::error_code ignored;
  if (!client.non_blocking()) client.non_blocking(true, ignored);
  if (!upstream.non_blocking()) upstream.non_blocking(true, ignored);
  detail::start_flow<CopyFlow>(client, upstream, options, counters, std::move(done));
}

}  // namespace snigate::relay
