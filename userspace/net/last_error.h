#pragma once
// errno after a failed socket call, as the error_code asio would report: EAGAIN becomes
// would_block so callers compare against one value whichever path made the call.
#include <cerrno>

#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

namespace snigate::net {

inline boost::system::error_code last_error() {
  return errno == EAGAIN ? boost::system::error_code(boost::asio::error::would_block)
                         : boost::system::error_code(errno, boost::system::system_category());
}

}  // namespace snigate::net
