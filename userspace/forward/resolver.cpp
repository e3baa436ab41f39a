#include "forward/resolver.h"

#include <ares.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "config/diag.h"
#include "forward/allow_list.h"

namespace snigate::forward {

namespace asio = boost::asio;
namespace ip = asio::ip;
using Clock = std::chrono::steady_clock;

const char* to_string(ResolveStatus status) {
  switch (status) {
    case ResolveStatus::Ok: return "ok";
    case ResolveStatus::NotFound: return "not-found";
    case ResolveStatus::Timeout: return "timeout";
    case ResolveStatus::Error: return "error";
  }
  return "?";
}

namespace {

// "ip", "ip:port", "[v6]", "[v6]:port" -> c-ares CSV form; throws std::invalid_argument.
std::string server_for_cares(std::string_view text) {
  std::string_view host = text;
  std::string_view port;
  if (text.starts_with('[')) {
    auto close = text.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("missing ']'");
    host = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') throw std::invalid_argument("expected ':PORT' after ']'");
      port = rest.substr(1);
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    auto colon = text.find(':');
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  boost::system::error_code ec;
  auto address = ip::make_address(std::string(host), ec);
  if (ec) throw std::invalid_argument("'" + std::string(host) + "' is not an IP address");
  if (!port.empty() || text.starts_with('[')) {
    unsigned value = 0;
    if (!port.empty()) {
      auto [end, err] = std::from_chars(port.data(), port.data() + port.size(), value);
      if (err != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
        throw std::invalid_argument("port '" + std::string(port) + "' is not 1-65535");
    }
    std::string out = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
    return port.empty() ? out : out + ":" + std::to_string(value);
  }
  return address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
}

void library_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (int rc = ares_library_init(ARES_LIB_INIT_ALL); rc != ARES_SUCCESS)
      throw std::runtime_error(std::string("c-ares: ") + ares_strerror(rc));
  });
}

}  // namespace

ResolverConfig parse_resolver_config(const toml::table& root) {
  ResolverConfig out;
  const auto* node = root.get("resolver");
  if (!node) return out;
  const auto* table = node->as_table();
  if (!table) config::fail(*node, "[resolver] must be a table");
  config::check_keys(*table, {"servers", "timeout", "max_ttl", "cache_size"}, "resolver");
  out.servers = config::get_string_list(*table, "servers");
  for (std::size_t i = 0; i < out.servers.size(); ++i) {
    try {
      server_for_cares(out.servers[i]);
    } catch (const std::invalid_argument& e) {
      const toml::node& at = table->get("servers")->is_array()
                                 ? *table->get("servers")->as_array()->get(i)
                                 : *table->get("servers");
      config::fail(at, "resolver server '" + out.servers[i] + "': " + e.what() +
                           "; write it as \"IP\" or \"IP:PORT\" ([IPv6]:PORT)");
    }
  }
  out.timeout = config::get_duration(*table, "timeout", out.timeout);
  if (out.timeout.count() <= 0) config::fail(*table->get("timeout"), "resolver timeout must be > 0");
  out.max_ttl = std::chrono::duration_cast<std::chrono::seconds>(
      config::get_duration(*table, "max_ttl", out.max_ttl));
  out.cache_size = static_cast<std::size_t>(
      config::get_int(*table, "cache_size", static_cast<std::int64_t>(out.cache_size), 0, 10000000));
  return out;
}

struct Resolver::Impl {
  struct Watch {
    asio::posix::stream_descriptor descriptor;
    bool want_read = false, want_write = false, reading = false, writing = false, alive = true;
    explicit Watch(asio::any_io_executor ex, int fd) : descriptor(ex, fd) {}
  };
  struct Waiter {
    asio::steady_timer timer;
    std::optional<Resolution> result;
    explicit Waiter(asio::any_io_executor ex) : timer(ex) {}
  };
  struct Cached {
    std::vector<ip::address> addresses;
    Clock::time_point expires;
    std::chrono::seconds ttl;
  };
  struct Query {
    Impl* impl;
    std::string name;
  };

  asio::any_io_executor executor;
  ResolverConfig config;
  ares_channel channel = nullptr;
  asio::steady_timer retransmit;
  std::unordered_map<int, std::shared_ptr<Watch>> watches;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Waiter>>> pending;
  std::unordered_map<std::string, Cached> cache;
  std::uint64_t queries = 0;
  bool destroying = false;

  Impl(asio::any_io_executor ex, ResolverConfig cfg)
      : executor(ex), config(std::move(cfg)), retransmit(ex) {
    library_init();
    ares_options options{};
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
    options.sock_state_cb = &Impl::on_sock_state;
    options.sock_state_cb_data = this;
    // c-ares doubles the per-try timeout each round: two tries of T/3 then 2T/3 fit in T.
    options.timeout = std::max<int>(50, static_cast<int>(config.timeout.count() / 3));
    options.tries = 2;
    // A requested SNI is a full name; search domains would turn "intranet" into an inside name.
    options.flags = ARES_FLAG_NOSEARCH;
    char lookups[] = "b";
    if (!config.servers.empty()) {
      // Explicit servers mean DNS only, not /etc/hosts.
      options.lookups = lookups;
      mask |= ARES_OPT_LOOKUPS;
    }
    if (int rc = ares_init_options(&channel, &options, mask); rc != ARES_SUCCESS)
      throw std::runtime_error(std::string("c-ares init: ") + ares_strerror(rc));
    if (!config.servers.empty()) {
      std::string csv;
      for (const auto& s : config.servers) csv += (csv.empty() ? "" : ",") + server_for_cares(s);
      if (int rc = ares_set_servers_ports_csv(channel, csv.c_str()); rc != ARES_SUCCESS) {
        ares_destroy(channel);
        throw std::runtime_error("c-ares servers '" + csv + "': " + ares_strerror(rc));
      }
    }
  }

  ~Impl() {
    destroying = true;
    retransmit.cancel();
    for (auto& [fd, watch] : watches) release(*watch);
    watches.clear();
    ares_destroy(channel);  // runs pending callbacks with ARES_EDESTRUCTION; they see `destroying`
    for (auto& [name, waiters] : pending)
      for (auto& w : waiters) w->timer.cancel();
  }

  static void release(Watch& watch) {
    watch.alive = false;
    boost::system::error_code ignored;
    watch.descriptor.cancel(ignored);
    watch.descriptor.release();  // c-ares owns and closes the socket
  }

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<Impl*>(data);
    if (self->destroying) return;
    auto it = self->watches.find(fd);
    if (!readable && !writable) {
      if (it != self->watches.end()) {
        release(*it->second);
        self->watches.erase(it);
      }
      return;
    }
    if (it == self->watches.end())
      it = self->watches.emplace(fd, std::make_shared<Watch>(self->executor, fd)).first;
    it->second->want_read = readable;
    it->second->want_write = writable;
    self->arm(it->second, fd);
  }

  void arm(const std::shared_ptr<Watch>& watch, int fd) {
    if (watch->want_read && !watch->reading) {
      watch->reading = true;
      watch->descriptor.async_wait(asio::posix::descriptor_base::wait_read,
                                   [this, watch, fd](boost::system::error_code ec) {
                                     watch->reading = false;
                                     if (ec || !watch->alive) return;
                                     ares_process_fd(channel, fd, ARES_SOCKET_BAD);
                                     after_io(watch, fd);
                                   });
    }
    if (watch->want_write && !watch->writing) {
      watch->writing = true;
      watch->descriptor.async_wait(asio::posix::descriptor_base::wait_write,
                                   [this, watch, fd](boost::system::error_code ec) {
                                     watch->writing = false;
                                     if (ec || !watch->alive) return;
                                     ares_process_fd(channel, ARES_SOCKET_BAD, fd);
                                     after_io(watch, fd);
                                   });
    }
  }

  void after_io(const std::shared_ptr<Watch>& watch, int fd) {
    if (watch->alive) arm(watch, fd);
    schedule_retransmit();
  }

  // c-ares keeps its own per-try deadlines; ares_timeout says when it next needs a call.
  void schedule_retransmit() {
    if (pending.empty()) return;
    timeval max{1, 0}, tv{};
    timeval* next = ares_timeout(channel, &max, &tv);
    auto delay = std::chrono::seconds(next->tv_sec) + std::chrono::microseconds(next->tv_usec);
    retransmit.expires_after(delay);
    retransmit.async_wait([this](boost::system::error_code ec) {
      if (ec || destroying) return;
      ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      schedule_retransmit();
    });
  }

  static void on_answer(void* arg, int status, int /*timeouts*/, ares_addrinfo* info) {
    std::unique_ptr<Query> query(static_cast<Query*>(arg));
    Impl* self = query->impl;
    Resolution result;
    if (status == ARES_SUCCESS && info) {
      int ttl = -1;
      std::vector<ip::address> v4, v6;
      for (auto* n = info->nodes; n; n = n->ai_next) {
        ttl = ttl < 0 ? n->ai_ttl : std::min(ttl, n->ai_ttl);
        if (n->ai_family == AF_INET) {
          auto* sin = reinterpret_cast<const sockaddr_in*>(n->ai_addr);
          v4.push_back(ip::address_v4(ntohl(sin->sin_addr.s_addr)));
        } else if (n->ai_family == AF_INET6) {
          auto* sin6 = reinterpret_cast<const sockaddr_in6*>(n->ai_addr);
          ip::address_v6::bytes_type bytes;
          std::copy_n(sin6->sin6_addr.s6_addr, 16, bytes.begin());
          v6.push_back(ip::address_v6(bytes));
        }
      }
      // A CNAME chain is only as fresh as its shortest-lived link (RFC 2181 section 10.1.1).
      for (auto* c = info->cnames; c; c = c->next) ttl = ttl < 0 ? c->ttl : std::min(ttl, c->ttl);
      result.addresses = std::move(v4);
      result.addresses.insert(result.addresses.end(), v6.begin(), v6.end());
      result.ttl = std::chrono::seconds(std::max(ttl, 0));
      result.status = result.addresses.empty() ? ResolveStatus::NotFound : ResolveStatus::Ok;
      if (result.addresses.empty()) result.error = "no A or AAAA record";
    } else {
      result.status = status == ARES_ENOTFOUND || status == ARES_ENODATA ? ResolveStatus::NotFound
                      : status == ARES_ETIMEOUT                          ? ResolveStatus::Timeout
                                                                         : ResolveStatus::Error;
      result.error = ares_strerror(status);
    }
    if (info) ares_freeaddrinfo(info);
    if (self->destroying) return;
    self->finish(query->name, std::move(result));
  }

  void finish(const std::string& name, Resolution result) {
    if (result.status == ResolveStatus::Ok) {
      auto ttl = std::min(result.ttl, config.max_ttl);
      result.ttl = ttl;
      if (ttl.count() > 0) store(name, result.addresses, ttl);
    }
    auto it = pending.find(name);
    if (it == pending.end()) return;
    auto waiters = std::move(it->second);
    pending.erase(it);
    for (auto& w : waiters) {
      w->result = result;
      w->timer.cancel();
    }
  }

  void store(const std::string& name, const std::vector<ip::address>& addresses,
             std::chrono::seconds ttl) {
    auto now = Clock::now();
    if (config.cache_size == 0) return;
    if (cache.size() >= config.cache_size) {
      // Expired entries first; a cache full of live ones starts over, which costs only queries.
      std::erase_if(cache, [&](const auto& kv) { return kv.second.expires <= now; });
      if (cache.size() >= config.cache_size) cache.clear();
    }
    cache[name] = Cached{addresses, now + ttl, ttl};
  }

  std::optional<Resolution> cached(const std::string& name) {
    auto it = cache.find(name);
    if (it == cache.end()) return std::nullopt;
    auto now = Clock::now();
    if (it->second.expires <= now) {
      cache.erase(it);
      return std::nullopt;
    }
    Resolution r;
    r.status = ResolveStatus::Ok;
    r.addresses = it->second.addresses;
    r.ttl = std::chrono::duration_cast<std::chrono::seconds>(it->second.expires - now);
    r.from_cache = true;
    return r;
  }
};

Resolver::Resolver(asio::any_io_executor executor, ResolverConfig config)
    : impl_(std::make_unique<Impl>(executor, std::move(config))) {}
Resolver::~Resolver() = default;

const ResolverConfig& Resolver::config() const { return impl_->config; }
std::uint64_t Resolver::queries() const { return impl_->queries; }

asio::awaitable<Resolution> Resolver::resolve(std::string_view requested) {
  auto name = normalize_name(requested);
  boost::system::error_code ec;
  auto literal = ip::make_address(name, ec);
  if (!ec) {
    Resolution r;
    r.status = ResolveStatus::Ok;
    r.addresses.push_back(literal);
    co_return r;
  }
  if (name.empty()) co_return Resolution{ResolveStatus::Error, {}, "empty name", {}, false};
  Impl& impl = *impl_;
  if (auto hit = impl.cached(name)) co_return *hit;

  auto waiter = std::make_shared<Impl::Waiter>(impl.executor);
  waiter->timer.expires_after(impl.config.timeout);
  auto& waiters = impl.pending[name];
  waiters.push_back(waiter);
  if (waiters.size() == 1) {
    ++impl.queries;
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;  // A and AAAA
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NOSORT;
    ares_getaddrinfo(impl.channel, name.c_str(), nullptr, &hints, &Impl::on_answer,
                     new Impl::Query{&impl, name});
    impl.schedule_retransmit();
  }
  if (!waiter->result) {
    co_await waiter->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (waiter->result) co_return std::move(*waiter->result);
  // Our deadline passed first; the query may still answer later and fill the cache.
  if (auto it = impl.pending.find(name); it != impl.pending.end())
    std::erase(it->second, waiter);
  Resolution r;
  r.status = ResolveStatus::Timeout;
  r.error = "no DNS answer within " + std::to_string(impl.config.timeout.count()) + "ms";
  co_return r;
}

}  // namespace snigate::forward
