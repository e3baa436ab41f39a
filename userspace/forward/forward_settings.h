#pragma once
// The forward modes of one loaded configuration, compiled once per (re)load: the [resolver]
// section, and the allow-lists, address rules and credentials of every `protocol = "connect"`
// listener and every `forward = PORT` backend. This is what the daemon holds and calls into.
#include <map>
#include <memory>
#include <string>
#include <utility>  // boost 1.74 awaitable.hpp uses std::exchange without including it
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "config/config.h"
#include "forward/connect_request.h"
#include "forward/forwarder.h"
#include "forward/resolver.h"

namespace snigate::forward {

struct ForwardSettings {
  ResolverConfig resolver;
  std::map<std::string, ConnectRules> listeners;  // connect listeners, by listener name
  std::map<std::string, Rules> backends;          // forward backends, by backend name
  std::map<std::string, std::uint16_t> backend_ports;
  // Refused as destinations unless listed: the addresses the daemon listens on (and, asked
  // at connect time, whatever else the kernel calls local: address_policy.h).
  std::vector<boost::asio::ip::address> own_addresses;
};

// Throws config::ConfigError "FILE:LINE:COL: ..." for a bad allow entry, auth or [resolver].
std::shared_ptr<const ForwardSettings> load_forward_settings(const config::Config& config);

// The Forwarder of the calling event-loop thread for these settings: created on first use,
// kept (with its DNS cache) across reloads that leave [resolver] unchanged.
std::shared_ptr<Forwarder> thread_forwarder(boost::asio::any_io_executor executor,
                                            const ForwardSettings& settings);

// The daemon's call for a `protocol = "connect"` listener.
boost::asio::awaitable<ForwardResult> serve_connect(boost::asio::ip::tcp::socket& client,
                                                    std::vector<std::uint8_t>& buffer,
                                                    const ForwardSettings& settings,
                                                    const std::string& listener,
                                                    const boost::asio::ip::address& client_address,
                                                    OnDestination on_destination = {});

// The daemon's call for a `forward = PORT` backend: the SNI name in, a connected socket or the
// reason for a refusal out.
boost::asio::awaitable<ForwardResult> open_forward(boost::asio::any_io_executor executor,
                                                   const ForwardSettings& settings,
                                                   const std::string& backend,
                                                   std::string server_name);

}  // namespace snigate::forward
