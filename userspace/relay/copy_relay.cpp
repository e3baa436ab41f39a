#include "relay/copy_relay.h"

#include <memory>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "relay/relay_state.h"

namespace snigate::relay {

namespace asio = boost::asio;
using boost::system::error_code;
using detail::Direction;
using detail::Link;

namespace {

asio::awaitable<void> pump(Link& link, Direction d) {
  const std::size_t size = link.options().buffer_bytes;
  // The buffer exists only while bytes are flowing, so an idle connection holds none.
  std::unique_ptr<char[]> buf;
  error_code ec;
  for (;;) {
    if (!buf) buf = std::make_unique<char[]>(size);
    std::size_t n = d.from.read_some(asio::buffer(buf.get(), size), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      buf.reset();
      co_await d.from.async_wait(tcp::socket::wait_read,
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return link.failed(d.from_side, ec);
      continue;
    }
    if (ec == asio::error::eof) co_return link.eof(d);
    if (ec) co_return link.failed(d.from_side, ec);
    link.touch();
    co_await asio::async_write(d.to, asio::buffer(buf.get(), n),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return link.failed(d.to_side, ec);
    d.count += n;
  }
}

}  // namespace

asio::awaitable<Result> CopyRelay::run(tcp::socket& client, tcp::socket& upstream,
                                       const Options& options, Counters& counters) {
  counters.mode = Mode::Copy;
  // Set once per socket (asio's flag is read without a system call): the listener already
  // did for the client.
  error_code ignored;
  if (!client.non_blocking()) client.non_blocking(true, ignored);
  if (!upstream.non_blocking()) upstream.non_blocking(true, ignored);
  Link link(client, upstream, options, counters);
  co_return co_await link.run(pump);
}

}  // namespace snigate::relay
