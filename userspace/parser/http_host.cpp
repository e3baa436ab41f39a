#include "parser/http_host.h"

#include <algorithm>
#include <array>
#include <charconv>

#include <boost/asio/ip/address_v6.hpp>

namespace snigate::parser {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

// RFC 9110 5.6.2 tchar.
// A table, since every header name byte goes through it on every re-call.
constexpr std::array<bool, 256> kTchar = [] {
  std::array<bool, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();
bool is_tchar(char c) { return kTchar[static_cast<unsigned char>(c)]; }

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

// Visible ASCII, as allowed in a request-target (RFC 9112 3.2; no spaces or controls).
bool is_vchar(char c) { return c > 0x20 && c < 0x7f; }

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// Request bytes quoted in an error end up in the access log: printable ASCII only, escapes
// for the rest, and cut short.
std::string quote(std::string_view text, std::size_t max = 80) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : text.substr(0, max)) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\') {
      out.push_back(c);
    } else {
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  if (text.size() > max) out += "...";
  return out;
}

HttpPreread fail(std::string error) {
  HttpPreread r;
  r.status = Status::Error;
  r.error = std::move(error);
  return r;
}

struct Authority {
  std::string host;
  std::optional<std::uint16_t> port;
};

// uri-host [":" port] (RFC 3986 3.2.2-3.2.3): a reg-name of letters, digits, '-', '_', '.', or
// a bracketed IPv6 literal. Lower-cased, trailing dot removed, brackets removed.
std::optional<Authority> parse_authority(std::string_view text, std::string& error) {
  Authority a;
  std::string_view host = text, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) {
      error = "unterminated IPv6 literal in '" + quote(text) + "'";
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') {
      error = "unexpected text after IPv6 literal in '" + quote(text) + "'";
      return std::nullopt;
    }
    if (!rest.empty()) port = rest.substr(1);
    boost::system::error_code ec;
    // Zone ids ("%25eth0") name a local interface; they are never a routing name.
    auto v6 = host.find('%') == std::string_view::npos
                  ? boost::asio::ip::make_address_v6(std::string(host), ec)
                  : boost::asio::ip::address_v6();
    if (ec || host.find('%') != std::string_view::npos || host.empty()) {
      error = "'" + quote(host) + "' is not an IPv6 address";
      return std::nullopt;
    }
    a.host = v6.to_string();
  } else {
    auto colon = text.rfind(':');
    if (colon != std::string_view::npos) {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
    }
    for (char c : host) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '.' || c == '_')) {
        error = "invalid character in host '" + quote(host) + "'";
        return std::nullopt;
      }
      a.host.push_back(lower(c));
    }
    if (!a.host.empty() && a.host.back() == '.') a.host.pop_back();
    // Empty labels ("a..b", ".a", "a..", ".") would never match a route.
    if (!host.empty() && (a.host.empty() || a.host.front() == '.' || a.host.back() == '.' ||
                          a.host.find("..") != std::string::npos)) {
      error = "'" + quote(host) + "' is not a host name";
      return std::nullopt;
    }
  }
  // RFC 3986 3.2.3: the port may be empty ("host:"), meaning the scheme's default.
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || port.size() > 5 || value > 65535 ||
        port.front() == '+') {
      error = "invalid port '" + quote(port) + "'";
      return std::nullopt;
    }
    a.port = static_cast<std::uint16_t>(value);
  }
  return a;
}

// The authority of an absolute-form target "scheme://authority[/path][?query]"
// (RFC 9112 3.2.2); nullopt when the target is not absolute-form.
std::optional<std::string_view> absolute_authority(std::string_view target) {
  auto sep = target.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  // RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
  for (std::size_t i = 0; i < sep; ++i) {
    char c = target[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alpha && (i == 0 || !((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.')))
      return std::nullopt;
  }
  std::string_view rest = target.substr(sep + 3);
  return rest.substr(0, rest.find_first_of("/?#"));
}

// Splits `data` into lines ending in LF (a preceding CR is dropped; RFC 9112 2.2 lets a
// recipient accept a bare LF). Returns false when the last line is not complete yet.
struct Line {
  std::string_view text;
  std::size_t end;  // offset just past the LF
};

std::optional<Line> next_line(std::string_view data, std::size_t from) {
  auto lf = data.find('\n', from);
  if (lf == std::string_view::npos) return std::nullopt;
  std::string_view text = data.substr(from, lf - from);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return Line{text, lf + 1};
}

// Request line: method SP request-target SP HTTP-version (RFC 9112 3).
std::optional<std::string> parse_request_line(std::string_view line, HttpRequestHead& head) {
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return "request line '" + quote(line) +
           "' is not 'METHOD target HTTP/1.x'";
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) return "invalid method '" + quote(method, 40) + "'";
  if (target.empty() || !std::all_of(target.begin(), target.end(), is_vchar))
    return "invalid request target";
  if (version == "HTTP/2.0") return "HTTP/2 with prior knowledge is not supported on an http listener";
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || version[7] < '0' || version[7] > '9')
    return "unsupported HTTP version '" + quote(version, 20) + "'";
  head.method = method;
  head.target = target;
  head.version_minor = version[7] - '0';
  return std::nullopt;
}

// Fails fast on bytes that cannot start a request line (a TLS hello on an http port, binary
// junk), instead of waiting for a line end that may never come.
bool plausible_prefix(std::string_view partial_line) {
  for (char c : partial_line) {
    if (c == ' ') return true;
    if (!is_tchar(c)) return false;
  }
  return true;
}

}  // namespace

const std::string* HttpRequestHead::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (iequals(key, name)) return &value;
  return nullptr;
}

HttpPreread parse_http_preread(std::span<const std::uint8_t> bytes, std::size_t max_bytes) {
  HttpCursor fresh;
  return parse_http_preread(bytes, fresh, max_bytes);
}

HttpPreread parse_http_preread(std::span<const std::uint8_t> bytes, HttpCursor& cursor, std::size_t max_bytes) {
  std::string_view data(reinterpret_cast<const char*>(bytes.data()), std::min(bytes.size(), max_bytes));
  auto too_large = [&] {
    return fail("request head exceeds the preread limit of " + std::to_string(max_bytes) + " bytes");
  };
  HttpPreread result;
  HttpRequestHead& head = result.head;
  // The blank line ending the head, searched from the LF ending a line.
  auto head_ends = [&](std::size_t lf) {
    return data.find("\n\n", lf) != std::string_view::npos || data.find("\n\r\n", lf) != std::string_view::npos;
  };

  // Lines before cursor.checked were found valid by an earlier call: while the head is
  // incomplete, carry on from there.
  const bool resumed = cursor.checked > 0 && !head_ends(cursor.checked - 1);
  std::size_t pos = cursor.checked;
  if (!resumed) {
    // RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
    pos = 0;
    for (int skipped = 0; skipped < 4 && pos < data.size(); ++skipped) {
      if (data.substr(pos, 2) == "\r\n") pos += 2;
      else if (data[pos] == '\n') pos += 1;
      else break;
    }
    // A CR whose LF has not arrived yet may still be an empty line to skip.
    if (data.substr(pos) == "\r") return bytes.size() >= max_bytes ? too_large() : result;
    auto request_line = next_line(data, pos);
    if (!request_line) {
      if (!plausible_prefix(data.substr(pos))) return fail("not an HTTP/1.x request line");
      if (bytes.size() >= max_bytes) return too_large();
      return result;
    }
    if (auto error = parse_request_line(request_line->text, head)) return fail(*error);
    pos = request_line->end;
  }
  // Header lines are checked as they arrive, to fail fast, but stored only once the blank line
  // has arrived: a head dripped byte by byte would otherwise rebuild them all on every call.
  const bool complete = !resumed && head_ends(pos - 1);
  if (!complete) cursor.checked = pos;
  for (;;) {
    auto line = next_line(data, pos);
    if (!line) {
      if (bytes.size() >= max_bytes) return too_large();
      return result;
    }
    pos = line->end;
    if (line->text.empty()) break;
    // RFC 9112 5.2: obsolete line folding; rejected rather than guessed at.
    if (is_ows(line->text.front())) return fail("obsolete header line folding is not accepted");
    auto colon = line->text.find(':');
    std::string_view name = line->text.substr(0, colon);
    // RFC 9112 5.1: no whitespace between the field name and the colon.
    if (colon == std::string_view::npos || !is_token(name))
      return fail("malformed header line '" + quote(line->text) + "'");
    std::string_view value = trim_ows(line->text.substr(colon + 1));
    if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\0' || c == '\r'; }))
      return fail("header '" + std::string(name) + "' has a control character in its value");
    if (complete) head.headers.emplace_back(std::string(name), std::string(value));
    else cursor.checked = pos;
  }
  result.head_bytes = pos;

  const std::string* host_header = nullptr;
  for (const auto& [key, value] : head.headers) {
    if (!iequals(key, "host")) continue;
    // RFC 9112 3.2: more than one Host field line is an error.
    if (host_header) return fail("more than one Host header");
    host_header = &value;
  }

  std::string error;
  std::optional<Authority> authority;
  if (iequals(head.method, "CONNECT")) {
    // RFC 9110 9.3.6: authority-form, host and port both required.
    authority = parse_authority(head.target, error);
    if (!authority) return fail("CONNECT target: " + error);
    if (authority->host.empty() || !authority->port)
      return fail("CONNECT target '" + quote(head.target) + "' must be host:port");
  } else if (auto uri = absolute_authority(head.target)) {
    // RFC 9112 3.2.2: the target's authority wins over the Host header.
    authority = parse_authority(*uri, error);
    if (!authority) return fail("request target: " + error);
    // RFC 9110 4.2.1: an http URI with an empty host is invalid.
    if (authority->host.empty()) return fail("request target '" + quote(head.target) + "' has an empty host");
    if (head.version_minor >= 1 && !host_header) return fail("HTTP/1.1 request without a Host header");
  } else if (host_header) {
    authority = parse_authority(*host_header, error);
    if (!authority) return fail("Host header: " + error);
  } else if (head.version_minor >= 1) {
    return fail("HTTP/1.1 request without a Host header");
  }
  if (authority) {
    head.host = std::move(authority->host);
    head.port = authority->port;
  }
  result.status = Status::Done;
  return result;
}

}  // namespace snigate::parser
