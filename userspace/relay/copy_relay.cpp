#include "relay/copy_relay.h"

#include "relay/copy_io.h"
#include "relay/flow.h"

namespace snigate::relay {

namespace {

using boost::system::error_code;

class CopyFlow : public detail::Flow {
 public:
  using Flow::Flow;

 private:
  std::size_t read(int d, tcp::socket& from, std::size_t max, error_code& ec) override {
    return io_.read(d, from, max, ec);
  }
  bool nothing_left(int d) const override { return io_.nothing_left(d); }
  std::size_t write(int d, tcp::socket& to, std::size_t held, error_code& ec) override {
    return io_.write(d, to, held, ec);
  }
  void release(int d, bool) override { io_.release(d, options().buffer_bytes); }

  detail::CopyIo io_;
};

// A copy that hands the connection on once it has moved `after` bytes either way.
class CopyThenFlow final : public CopyFlow {
 public:
  CopyThenFlow(tcp::socket& client, tcp::socket& upstream, const Options& options,
               Counters& counters, Relay::Done done, std::uint64_t after, Relay& then)
      : CopyFlow(client, upstream, options, counters, std::move(done)),
        counters_(counters),
        after_(after),
        then_(then) {}

 private:
  bool leave_now() const override {
    return counters_.client_to_upstream >= after_ || counters_.upstream_to_client >= after_;
  }
  void leave(Relay::Done done) override {
    then_.start(client(), upstream(), options(), counters_, std::move(done));
  }

  Counters& counters_;
  const std::uint64_t after_;
  Relay& then_;
};

}  // namespace

void CopyRelay::start(tcp::socket& client, tcp::socket& upstream, const Options& options,
                      Counters& counters, Done done) {
  counters.mode = Mode::Copy;
  detail::start_flow<CopyFlow>(client, upstream, options, counters, std::move(done));
}

void CopyRelay::start_then(tcp::socket& client, tcp::socket& upstream, const Options& options,
                           Counters& counters, Done done, std::uint64_t after, Relay& then) {
  counters.mode = Mode::Copy;
  detail::start_flow<CopyThenFlow>(client, upstream, options, counters, std::move(done), after,
                                   then);
}

}  // namespace snigate::relay
