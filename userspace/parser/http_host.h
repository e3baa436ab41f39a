#pragma once
// HTTP/1.x request-head preread (RFC 9112 section 3, RFC 9110 7.2): the routing host of a plain
// HTTP listener and of a CONNECT request. Pure function over a byte span.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parser/status.h"

namespace snigate::parser {

struct HttpRequestHead {
  std::string method;              // as sent
  std::string target;              // request-target as sent
  // lower-cased, port stripped, IPv6 brackets removed; from absolute-form URI if present
  // (RFC 9112 3.2.2), else Host header; for CONNECT, from the authority-form target
  std::string host;
  std::optional<std::uint16_t> port;
  std::vector<std::pair<std::string, std::string>> headers;  // for CONNECT auth (Proxy-Authorization)
  int version_minor = 1;           // HTTP/1.<minor>

  // First header with this name (case-insensitive), or nullptr.
  const std::string* header(std::string_view name) const;
};

struct HttpPreread {
  Status status = Status::NeedMore;
  HttpRequestHead head;
  std::size_t head_bytes = 0;      // bytes up to and including the blank line ending the head
  std::string error;
};

// data = every byte received so far. Done once the blank line ending the head has arrived;
// a head longer than max_bytes is an Error.
HttpPreread parse_http_preread(std::span<const std::uint8_t> data, std::size_t max_bytes = 8192);

// Where earlier calls stopped in one connection's growing buffer. With it, while the head is
// incomplete, a re-call checks only the lines that arrived since, so a head dripped byte by
// byte costs linear rather than quadratic time. One per connection, default-constructed; pass
// the same buffer (grown at its end only) and the same max_bytes every time. Until Done, only
// status and error are meaningful.
struct HttpCursor {
  std::size_t checked = 0;  // end of the request and header lines found valid (0: none yet)
};
HttpPreread parse_http_preread(std::span<const std::uint8_t> data, HttpCursor& cursor,
                               std::size_t max_bytes = 8192);

}  // namespace snigate::parser
