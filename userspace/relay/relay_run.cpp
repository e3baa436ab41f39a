// Relay's callback form and its coroutine form, each written with the other. Apart from the
// names in relay.cpp, which the control protocol's fuzzers compile with clang: clang 14 cannot
// emit debug information for these coroutines ("Cannot represent a difference across sections").
#include "relay/relay.h"

#include <exception>
#include <memory>

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace snigate::relay {

namespace asio = boost::asio;

void Relay::start(tcp::socket& client, tcp::socket& upstream, const Options& options,
                  Counters& counters, Done done) {
  spawn(client.get_executor(), run(client, upstream, options, counters), std::move(done));
}

void Relay::spawn(const tcp::socket::executor_type& ex, asio::awaitable<Result> relay,
                  Done done) {
  asio::co_spawn(ex, std::move(relay),
                 [done = std::move(done)](std::exception_ptr e, Result result) {
                   if (e) {
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& x) {
                       result = {End::Error, x.what()};
                     }
                   }
                   done(std::move(result));
                 });
}

asio::awaitable<Result> Relay::run(tcp::socket& client, tcp::socket& upstream,
                                   const Options& options, Counters& counters) {
  auto ex = client.get_executor();
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>, void(Result)>(
      [&](auto handler) {
        // Done must be copyable; the coroutine's handler is not. Resumed through post, so a
        // relay that ends inside start() does not resume the coroutine before it suspended.
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        start(client, upstream, options, counters, [h, ex](Result result) {
          asio::post(ex, [h, result = std::move(result)]() mutable { (*h)(std::move(result)); });
        });
      },
      asio::use_awaitable);
}

}  // namespace snigate::relay
