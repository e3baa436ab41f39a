#include "relay/copy_relay.h"

#include "relay/copy_io.h"
#include "relay/flow.h"
#include "relay/then_flow.h"

namespace snigate::relay {

namespace {

using boost::system::error_code;

class CopyFlow : public detail::Flow {
 public:
  using Flow::Flow;

 protected:
  std::size_t read(int d, tcp::socket& from, std::size_t max, error_code& ec) override {
    return io_.read(d, from, max, ec);
  }

 private:
  bool nothing_left(int d) const override { return io_.nothing_left(d); }
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
  detail::start_flow<CopyFlow>(client, upstream, options, counters, std::move(done));
}

void CopyRelay::start_then(tcp::socket& client, tcp::socket& upstream, const Options& options,
                           Counters& counters, Done done, const HandoffProof& proof,
                           Takeover& then) {
  counters.mode = Mode::Copy;
  detail::start_flow<detail::ThenFlow<CopyFlow>>(client, upstream, options, counters,
                                                 std::move(done), proof, then);
}

}  // namespace snigate::relay
