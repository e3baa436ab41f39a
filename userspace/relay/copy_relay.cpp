#include "relay/copy_relay.h"

#include "relay/copy_io.h"
#include "relay/flow.h"

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

// A copy that hands the connection on once it has met its proof.
class CopyThenFlow final : public CopyFlow {
 public:
  CopyThenFlow(tcp::socket& client, tcp::socket& upstream, const Options& options,
               Counters& counters, Relay::Done done, const HandoffProof& proof, Takeover& then)
      : CopyFlow(client, upstream, options, counters, std::move(done)),
        counters_(counters),
        proof_(proof),
        then_(then) {}

 private:
  std::size_t read(int d, tcp::socket& from, std::size_t max, error_code& ec) override {
    const std::size_t n = CopyFlow::read(d, from, max, ec);
    if (n > 0) small_reads_ = n < HandoffProof::kSmallRead ? small_reads_ + 1 : 0;
    return n;
  }
  bool leave_now() const override {
    return counters_.client_to_upstream >= proof_.bytes ||
           counters_.upstream_to_client >= proof_.bytes || small_reads_ >= proof_.small_reads;
  }
  void leave(Relay::Done done) override {
    then_.take_over(client(), upstream(), options(), counters_, std::move(done));
  }

  Counters& counters_;
  const HandoffProof proof_;
  Takeover& then_;
  std::uint64_t small_reads_ = 0;  // in a row, either direction
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
  detail::start_flow<CopyThenFlow>(client, upstream, options, counters, std::move(done), proof,
                                   then);
}

}  // namespace snigate::relay
