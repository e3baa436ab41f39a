#pragma once
// How every relay ends, copy, splice and the sockmap handoff alike: the first event wins; an
// I/O error on one side ends the whole connection, a reset passed on as a reset (RST towards
// the other side), an abort (someone closed the sockets) or any other error closing both.
#include <optional>
#include <string>

#include <boost/system/error_code.hpp>

#include "relay/relay.h"

namespace snigate::relay {

// True for the errors that mean "the peer reset the connection" on read or write.
bool is_reset(const boost::system::error_code& ec);

class Ending {
 public:
  // How to close both sockets once an error has ended the connection.
  struct Close {
    bool reset_client = false;
    bool reset_upstream = false;
  };

  bool ended() const { return ended_; }
  const Result& result() const { return result_; }
  // Records `end` unless the connection has ended already; false then.
  bool finish(End end, std::string detail = {});
  // An I/O error on the client's (or upstream's) socket: records what it means and says how
  // to close both sockets; nullopt when the connection had ended already (nothing to close).
  std::optional<Close> failed(bool client_side, const boost::system::error_code& ec);

 private:
  bool ended_ = false;
  Result result_;
};

}  // namespace snigate::relay
