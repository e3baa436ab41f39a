#include "forward/allow_list.h"

#include <algorithm>
#include <stdexcept>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace snigate::forward {

namespace {

bool is_ip_literal(std::string_view name) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(std::string(name), ec);
  return !ec;
}

// RFC 1035 section 2.3.4: a name is at most 253 characters in text form, labels 63.
void check_name(std::string_view entry, std::string_view name) {
  auto bad = [&](const std::string& why) {
    throw std::invalid_argument("allow entry '" + std::string(entry) + "': " + why);
  };
  if (name.empty()) bad("empty name");
  if (name.size() > 253) bad("name longer than 253 characters");
  std::size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) bad("empty label (two dots in a row?)");
      label = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) bad(std::string("character '") + c + "' is not allowed in a host name; "
                 "use '~regex' for patterns, '*.' only as the first label");
    if (++label > 63) bad("label longer than 63 characters");
  }
}

}  // namespace

std::string normalize_name(std::string_view name) {
  std::string out(name);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

struct AllowList::Regex {
  std::string source;
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

AllowList::AllowList() = default;
AllowList::~AllowList() = default;
AllowList::AllowList(const AllowList&) = default;
AllowList& AllowList::operator=(const AllowList&) = default;
AllowList::AllowList(AllowList&&) noexcept = default;
AllowList& AllowList::operator=(AllowList&&) noexcept = default;

AllowList AllowList::compile(const std::vector<std::string>& entries) {
  AllowList list;
  for (const auto& entry : entries) {
    if (entry.empty()) throw std::invalid_argument("allow entry is empty");
    if (entry.front() == '~') {
      auto regex = std::make_shared<Regex>();
      regex->source = entry.substr(1);
      int code = 0;
      PCRE2_SIZE offset = 0;
      regex->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex->source.data()),
                                  regex->source.size(),
                                  PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_CASELESS, &code,
                                  &offset, nullptr);
      if (!regex->code) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(code, message, sizeof message);
        throw std::invalid_argument("allow entry '" + entry + "': bad regex at offset " +
                                    std::to_string(offset) + ": " +
                                    reinterpret_cast<const char*>(message));
      }
      list.regexes_.push_back(std::move(regex));
      continue;
    }
    if (entry.find_first_of(":/") != std::string::npos || is_ip_literal(entry)) {
      std::string error;
      auto prefix = net::Prefix::parse(entry, &error);
      if (!prefix) throw std::invalid_argument("allow entry " + error);
      list.prefixes_.push_back(*prefix);
      continue;
    }
    auto name = normalize_name(entry);
    if (name.starts_with("*.")) {
      check_name(entry, name.substr(2));
      list.suffixes_.push_back(name.substr(1));
    } else {
      check_name(entry, name);
      list.exact_.push_back(name);
    }
  }
  return list;
}

bool AllowList::empty() const { return !has_names() && !has_addresses(); }
bool AllowList::has_names() const {
  return !exact_.empty() || !suffixes_.empty() || !regexes_.empty();
}
bool AllowList::has_addresses() const { return !prefixes_.empty(); }

bool AllowList::matches_name(std::string_view requested) const {
  auto name = normalize_name(requested);
  if (name.empty() || is_ip_literal(name)) return false;
  if (std::find(exact_.begin(), exact_.end(), name) != exact_.end()) return true;
  for (const auto& suffix : suffixes_)
    if (name.size() > suffix.size() && name.ends_with(suffix)) return true;
  for (const auto& regex : regexes_) {
    pcre2_match_data* data = pcre2_match_data_create_from_pattern(regex->code, nullptr);
    int rc = pcre2_match(regex->code, reinterpret_cast<PCRE2_SPTR>(name.data()), name.size(), 0,
                         0, data, nullptr);
    pcre2_match_data_free(data);
    if (rc >= 0) return true;
  }
  return false;
}

bool AllowList::matches_address(const boost::asio::ip::address& address) const {
  return net::contains_any(prefixes_, address);
}

}  // namespace snigate::forward
