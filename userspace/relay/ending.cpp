#include "relay/ending.h"

#include <boost/asio/error.hpp>

namespace snigate::relay {

namespace asio = boost::asio;
using boost::system::error_code;

bool is_reset(const error_code& ec) {
  return ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted;
}

bool Ending::finish(End end, std::string detail) {
  if (ended_) return false;
  ended_ = true;
  result_.end = end;
  result_.detail = std::move(detail);
  return true;
}

std::optional<Ending::Close> Ending::failed(bool client_side, const error_code& ec) {
  if (ended_) return std::nullopt;
  if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
    finish(End::Aborted);
    return Close{};
  }
  if (is_reset(ec)) {
    finish(client_side ? End::ClientReset : End::UpstreamReset);
    return Close{.reset_client = !client_side, .reset_upstream = client_side};
  }
  finish(End::Error, std::string(client_side ? "client: " : "upstream: ") + ec.message());
  return Close{};
}

}  // namespace snigate::relay
