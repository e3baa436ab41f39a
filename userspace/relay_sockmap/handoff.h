#pragma once
// The watch over one connection the kernel relays (step 8 of the life cycle in
// sockmap_relay.h): from the moment both sockets are in the sockhash until it ends.
#include <cstdint>

#include "relay/relay.h"
#include "relay_sockmap/sockmap_kernel.h"

namespace snigate::relay::sockmap {

// A watch per direction (the FIN, a reset, the end of a pause: the source back into
// `sources`, or after a FIN the rest copied once every redirected byte is in the peer's send
// queue), and the event loop's idle sweep (relay/idle_sweep.h), which also keeps `counters`
// live from the kernel's counts. Between events the connection holds a readiness wait per
// socket and no coroutine frame or timer: an idle handed-off connection costs about what a
// copied one does. Ends by the rules of relay.h; on any end but Clean both sockets are closed
// here, an idle timeout and a broken direction with RST (SO_LINGER {1, 0} is already set on
// both by the caller). Returns at once; `ended` gets the result once, on the sockets'
// executor, after both watches have stopped.
void watch_handoff(Kernel& kernel, std::uint32_t slot, tcp::socket& client,
                   tcp::socket& upstream, const Options& options, Counters& counters,
                   Relay::Done ended);

}  // namespace snigate::relay::sockmap
