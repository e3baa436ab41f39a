// libFuzzer target for the remote ban channel (control/remote_protocol.cpp): a forged line is
// never accepted, and a body the edge would take (signed here with the real token, as a
// holder of the token could) decodes to a bounded ban request or a clear refusal.
#include <nlohmann/json.hpp>

#include "control/protocol.h"
#include "control/remote_protocol.h"
#include "fuzz_check.h"

using namespace snigate;
using nlohmann::json;

namespace {

const std::string kToken = "fuzz-token-0123456789abcdef";
const auto kNow = control::WallClock::time_point(std::chrono::seconds(1'800'000'000));

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  // 1. As a request line: without the token the MAC cannot hold.
  control::RemoteAuth auth({kToken}, std::chrono::seconds(30), 64);
  const auto forged = auth.verify(line, kNow);
  FUZZ_REQUIRE(!forged.ok && !forged.reason.empty() && printable(forged.reason));

  // 2. As a body a token holder signs: verified once, refused as a replay the second time.
  const json body = json::parse(line, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return 0;
  const std::string signed_line = control::sign_remote_request(body, kToken, kNow, control::random_nonce());
  const auto v = auth.verify(signed_line, kNow);
  FUZZ_REQUIRE(v.ok);  // (strings with invalid UTF-8 arrive replaced, so not == body)
  FUZZ_REQUIRE(!auth.verify(signed_line, kNow).ok);
  std::string error;
  auto request = control::ban_request_from_json(v.body, error);
  FUZZ_REQUIRE(request.has_value() != !error.empty());
  if (request) {
    FUZZ_REQUIRE(!request->duration || *request->duration <= bans::kMaxBanDuration);
    FUZZ_REQUIRE(request->id.size() <= 128);
  }
  return 0;
}
