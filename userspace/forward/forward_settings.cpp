#include "forward/forward_settings.h"

#include <stdexcept>

namespace snigate::forward {

namespace asio = boost::asio;
namespace ip = asio::ip;

namespace {

// Where a listener's or backend's key sits in the file, so errors carry file:line. Listeners
// are the [[listener]] array in file order, the order config.listeners keeps.
const toml::node* listener_key(const config::Config& c, std::size_t index, std::string_view key) {
  const auto* array = c.raw["listener"].as_array();
  if (!array || index >= array->size()) return nullptr;
  const auto* table = array->get(index)->as_table();
  return table ? table->get(key) : nullptr;
}

const toml::node* backend_key(const config::Config& c, const std::string& name,
                              std::string_view key) {
  return c.raw["backend"][name][key].node();
}

[[noreturn]] void fail_at(const config::Config& c, const toml::node* key, std::size_t entry,
                          const std::string& owner, const std::string& message) {
  if (key) {
    const auto* array = key->as_array();
    const toml::node* at = array && entry < array->size() ? array->get(entry) : key;
    config::fail(*at, message);
  }
  throw config::ConfigError(c.source + ": " + owner + ": " + message);
}

// Compiles entry by entry so a bad one is reported at its own position.
AllowList compile_allow(const config::Config& c, const std::vector<std::string>& entries,
                        const toml::node* key, const std::string& owner) {
  for (std::size_t i = 0; i < entries.size(); ++i) {
    try {
      AllowList::compile({entries[i]});
    } catch (const std::invalid_argument& e) {
      fail_at(c, key, i, owner, e.what());
    }
  }
  auto list = AllowList::compile(entries);
  if (list.empty())
    fail_at(c, key, 0, owner,
            "a forwarding " + owner + " needs a non-empty `allow` list (names, *.wildcards, "
            "~regex, addresses or CIDRs); it is never an open proxy");
  return list;
}

}  // namespace

std::shared_ptr<const ForwardSettings> load_forward_settings(const config::Config& c) {
  auto s = std::make_shared<ForwardSettings>();
  s->resolver = parse_resolver_config(c.raw);
  for (std::size_t i = 0; i < c.listeners.size(); ++i) {
    const auto& l = c.listeners[i];
    s->own_addresses.push_back(l.listen.address());
    if (l.protocol != config::Protocol::Connect) continue;
    std::string owner = "listener " + l.name;
    ConnectRules rules;
    rules.rules.allow = compile_allow(c, l.allow, listener_key(c, i, "allow"), owner);
    rules.rules.allow_private = l.allow_private;
    try {
      rules.auth = ProxyAuth::parse(l.auth);
    } catch (const std::invalid_argument& e) {
      fail_at(c, listener_key(c, i, "auth"), 0, owner, e.what());
    }
    rules.clients = l.clients;
    rules.max_head = l.preread_max;
    rules.head_timeout = l.preread_timeout;
    s->listeners[l.name] = std::move(rules);
  }
  for (const auto& [name, b] : c.backends) {
    if (!b.forward_port) continue;
    Rules rules;
    rules.allow = compile_allow(c, b.allow, backend_key(c, name, "allow"), "backend " + name);
    rules.allow_private = b.allow_private;
    rules.connect_timeout = b.connect_timeout;
    s->backends[name] = std::move(rules);
    s->backend_ports[name] = *b.forward_port;
  }
  // The host's own addresses are not listed here: the address policy asks the kernel at each
  // connect, so an address added after start (DHCP, SLAAC, `ip addr add`) counts too.
  // A wildcard listen address (0.0.0.0, ::) is already refused as unspecified.
  std::erase_if(s->own_addresses, [](const ip::address& a) { return a.is_unspecified(); });
  return s;
}

std::shared_ptr<Forwarder> thread_forwarder(asio::any_io_executor executor,
                                            const ForwardSettings& settings) {
  // c-ares channels are single-threaded, so each event-loop thread has its own; keyed by what
  // shapes the Forwarder so a reload that changes neither keeps the DNS cache.
  struct Slot {
    asio::execution_context* context;
    ResolverConfig resolver;
    std::vector<ip::address> own;
    std::shared_ptr<Forwarder> forwarder;
  };
  thread_local std::vector<Slot> slots;
  auto* context = &asio::query(executor, asio::execution::context);
  for (auto& slot : slots)
    if (slot.context == context && slot.resolver == settings.resolver &&
        slot.own == settings.own_addresses)
      return slot.forwarder;
  // Forwarders of older generations are dropped here once no connection uses them.
  std::erase_if(slots, [](const Slot& s) { return s.forwarder.use_count() == 1; });
  slots.push_back({context, settings.resolver, settings.own_addresses,
                   std::make_shared<Forwarder>(executor, settings.resolver, settings.own_addresses)});
  return slots.back().forwarder;
}

asio::awaitable<ForwardResult> serve_connect(ip::tcp::socket& client,
                                             std::vector<std::uint8_t>& buffer,
                                             const ForwardSettings& settings,
                                             const std::string& listener,
                                             const ip::address& client_address,
                                             OnDestination on_destination) {
  auto it = settings.listeners.find(listener);
  if (it == settings.listeners.end())
    throw std::logic_error("listener " + listener + " is not a connect listener");
  auto forwarder = thread_forwarder(client.get_executor(), settings);
  co_return co_await serve_connect_request(client, buffer, it->second, *forwarder,
                                           client_address, std::move(on_destination));
}

asio::awaitable<ForwardResult> open_forward(asio::any_io_executor executor,
                                            const ForwardSettings& settings,
                                            const std::string& backend, std::string server_name) {
  auto it = settings.backends.find(backend);
  if (it == settings.backends.end())
    throw std::logic_error("backend " + backend + " is not a forward backend");
  auto forwarder = thread_forwarder(executor, settings);
  co_return co_await forwarder->open(std::move(server_name), settings.backend_ports.at(backend),
                                     it->second);
}

}  // namespace snigate::forward
