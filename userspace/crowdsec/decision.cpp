#include "crowdsec/decision.h"

#include <algorithm>
#include <cctype>

#include <boost/asio/ip/address.hpp>
#include <nlohmann/json.hpp>

#include "crowdsec/go_duration.h"

namespace snigate::crowdsec {
namespace {

using nlohmann::json;

bool same_text(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string text(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Reads each entry of `list` (null: none) into `out`; true unless the list is not an array.
bool read_list(const json& body, const char* key, std::vector<Decision>& out, std::size_t& malformed) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_array()) return false;
  out.reserve(it->size());
  for (const auto& e : *it) {
    if (!e.is_object()) {
      ++malformed;
      continue;
    }
    Decision d;
    auto id = e.find("id");
    auto duration = parse_go_duration(text(e, "duration"));
    d.value = text(e, "value");
    if (id == e.end() || !id->is_number_integer() || d.value.empty() || !duration) {
      ++malformed;
      continue;
    }
    d.id = id->get<std::int64_t>();
    d.duration = *duration;
    d.origin = text(e, "origin");
    d.type = text(e, "type");
    d.scope = text(e, "scope");
    d.scenario = text(e, "scenario");
    out.push_back(std::move(d));
  }
  return true;
}

}  // namespace

std::optional<StreamBody> parse_stream(std::string_view body, std::string& error) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    error = "the decision stream's answer is not a JSON object";
    return std::nullopt;
  }
  StreamBody out;
  if (!read_list(j, "new", out.added, out.malformed) ||
      !read_list(j, "deleted", out.deleted, out.malformed)) {
    error = "the decision stream's 'new' or 'deleted' is not a list";
    return std::nullopt;
  }
  return out;
}

std::optional<net::Prefix> decision_prefix(const Decision& d) {
  boost::system::error_code ec;
  if (same_text(d.scope, "Ip")) {
    auto address = boost::asio::ip::make_address(d.value, ec);
    if (ec) return std::nullopt;
    return net::Prefix::host(net::unmap(address));
  }
  if (!same_text(d.scope, "Range")) return std::nullopt;
  auto slash = d.value.find('/');
  if (slash == std::string::npos) return std::nullopt;
  auto address = boost::asio::ip::make_address(d.value.substr(0, slash), ec);
  const std::string length_text = d.value.substr(slash + 1);
  if (ec || length_text.empty() || length_text.size() > 3 ||
      !std::all_of(length_text.begin(), length_text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  const unsigned length = static_cast<unsigned>(std::stoul(length_text));
  if (length > (address.is_v4() ? 32u : 128u)) return std::nullopt;
  // ::ffff:a.b.c.d/104 is a.b.c.d/8 to the ban maps, which hold IPv4 as IPv4.
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    if (length < 96) return std::nullopt;
    return net::Prefix::covering(net::unmap(address), length - 96);
  }
  return net::Prefix::covering(address, length);
}

bool DecisionFilter::accepts(const Decision& d) const {
  if (!same_text(d.type, "ban")) return false;
  auto listed = [](const std::vector<std::string>& list, const std::string& value) {
    return std::any_of(list.begin(), list.end(), [&](const auto& s) { return same_text(s, value); });
  };
  if (!listed(scopes, d.scope)) return false;
  if (!origins.empty() && !listed(origins, d.origin)) return false;
  if (scenarios.empty()) return true;
  return std::any_of(scenarios.begin(), scenarios.end(),
                     [&](const auto& s) { return d.scenario.find(s) != std::string::npos; });
}

}  // namespace snigate::crowdsec
