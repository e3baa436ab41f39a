// libFuzzer target for the control socket's requests (control/control_request.cpp): any line
// gets one well-formed reply, never a crash or an exception, and whatever the handlers are
// handed has passed the protocol's bounds.
#include <nlohmann/json.hpp>

#include "control/control_server.h"
#include "control/protocol.h"
#include "fuzz_check.h"

using namespace snigate;
using nlohmann::json;

namespace {

control::ControlHandlers fake_handlers() {
  control::ControlHandlers h;
  h.ban = [](const bans::BanRequest& r) {
    // What reaches a handler is bounded: no duration past the ceiling, no time out of range.
    FUZZ_REQUIRE(!r.duration || (r.duration->count() > 0 && *r.duration <= bans::kMaxBanDuration));
    FUZZ_REQUIRE(!r.matched_at || r.matched_at->time_since_epoch().count() >= 0);
    FUZZ_REQUIRE(r.id.size() <= 128);
    bans::BanOutcome o;
    o.ok = r.prefix.length() > 0;
    if (!o.ok) o.error = "would refuse every client";
    o.entry.prefix = r.prefix;
    o.entry.reason = r.reason;
    o.entry.sample = r.sample;  // may hold invalid UTF-8: the reply must still encode
    o.entry.matched_at = r.matched_at;
    return o;
  };
  h.unban = [](const net::Prefix& p) { return p.is_v4(); };
  h.list_bans = [] { return std::vector<bans::BanEntry>(1); };
  h.stats = [] { return json::object(); };
  h.reload = [] { return std::string(); };
  return h;  // conns left empty: the "not supported" path
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const control::ControlHandlers handlers = fake_handlers();
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const json reply = control::handle_request(handlers, line);
  FUZZ_REQUIRE(reply.is_object() && reply.contains("ok") && reply["ok"].is_boolean());
  if (!reply["ok"].get<bool>())
    FUZZ_REQUIRE(reply.contains("error") && reply["error"].is_string() &&
                 !reply["error"].get<std::string>().empty());
  // The server writes replies with invalid UTF-8 replaced: that never throws.
  const std::string wire = reply.dump(-1, ' ', false, json::error_handler_t::replace);
  FUZZ_REQUIRE(wire.find('\n') == std::string::npos);
  // A ban the reply reports decodes back as an entry.
  if (reply["ok"].get<bool>() && reply.contains("ban")) {
    std::string error;
    FUZZ_REQUIRE(control::ban_entry_from_json(json::parse(wire)["ban"], error).has_value());
  }
  return 0;
}
