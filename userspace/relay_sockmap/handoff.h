#pragma once
// The watch over one connection the kernel relays (step 8 of the life cycle in
// sockmap_relay.h): from the moment both sockets are in the sockhash until it ends.
#include <cstdint>

#include "relay/relay.h"
#include "relay_sockmap/sockmap_kernel.h"

namespace snigate::relay::sockmap {

// One watcher per direction (the FIN, a reset, the end of a pause: the source back into
// `sources`, or after a FIN the rest copied once every redirected byte is in the peer's send
// queue)
// and an idle ticker that also keeps `counters` live from the kernel's counts. Ends by the
// rules of relay.h; on any end but Clean both sockets are closed here, an idle timeout and a
// broken direction with RST (SO_LINGER {1, 0} is already set on both by the caller).
boost::asio::awaitable<Result> watch_handoff(Kernel& kernel, std::uint32_t slot,
                                             tcp::socket& client, tcp::socket& upstream,
                                             const Options& options, Counters& counters);

}  // namespace snigate::relay::sockmap
