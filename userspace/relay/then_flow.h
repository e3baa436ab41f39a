#pragma once
// A flow (copy or splice, flow.h) that hands its connection on once it has met its proof
// (then.h): HandingRelay::start_then's flow.
#include <cstdint>
#include <utility>

#include "relay/flow.h"
#include "relay/then.h"

namespace snigate::relay::detail {

template <typename Base>
class ThenFlow final : public Base {
 public:
  template <typename... Extra>
  ThenFlow(tcp::socket& client, tcp::socket& upstream, const Options& options,
           Counters& counters, Relay::Done done, const HandoffProof& proof, Takeover& then,
           Extra&&... extra)
      : Base(client, upstream, options, counters, std::move(done),
             std::forward<Extra>(extra)...),
        counters_(counters),
        proof_(proof),
        then_(then) {}

 private:
  std::size_t read(int d, tcp::socket& from, std::size_t max,
                   boost::system::error_code& ec) override {
    const std::size_t n = Base::read(d, from, max, ec);
    if (n > 0) small_reads_ = n < HandoffProof::kSmallRead ? small_reads_ + 1 : 0;
    return n;
  }
  bool leave_now() const override {
    return counters_.client_to_upstream >= proof_.bytes ||
           counters_.upstream_to_client >= proof_.bytes || small_reads_ >= proof_.small_reads;
  }
  void leave(Relay::Done done) override {
    then_.take_over(this->client(), this->upstream(), this->options(), counters_,
                    std::move(done));
  }

  Counters& counters_;
  const HandoffProof proof_;
  Takeover& then_;
  std::uint64_t small_reads_ = 0;  // in a row, either direction
};

}  // namespace snigate::relay::detail
