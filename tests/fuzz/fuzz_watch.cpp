// libFuzzer target for the log watcher's hostile input: the line splitter (bytes a local
// user can write into a followed log) and filter matching over the lines it hands out.
// Input: the first byte picks the cut length (small, so cuts happen) and how the bytes are
// chunked; the rest is the file.
#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "watch/filter.h"
#include "watch/line_splitter.h"

using namespace snigate::watch;

namespace {

struct Split {
  std::vector<std::string> lines;
  std::uint64_t consumed = 0;
  bool in_cut = false;
};

// The file fed in chunks of `sizes` (cycled), from a splitter resumed at `from`.
Split split(std::string_view file, std::size_t max_line, std::vector<std::size_t> sizes,
            std::uint64_t from = 0, bool in_cut = false) {
  LineSplitter s(max_line);
  s.reset(from, in_cut);
  Split out;
  auto on_line = [&](std::string_view l) { out.lines.emplace_back(l); };
  std::size_t at = static_cast<std::size_t>(from), i = 0;
  while (at < file.size()) {
    auto n = std::min(sizes[i++ % sizes.size()], file.size() - at);
    s.feed(file.substr(at, n), on_line);
    at += n;
    FUZZ_REQUIRE(s.consumed() + s.pending() == at);  // every byte read is a line's or pending
    FUZZ_REQUIRE(s.pending() <= max_line);
  }
  out.consumed = s.consumed();
  out.in_cut = s.in_cut_line();
  return out;
}

Filter& filter() {
  static Filter f = [] {
    FilterDefinition d;
    d.source = "fuzz";
    d.failregex = {
        R"(^<HOST> -.*"(GET|POST|HEAD) /(?:phpmyadmin|wp-login\.php)\S* HTTP/\d\.\d" 404)",
        R"(\[error\] \d+#\d+: \*\d+ user "<F-USER>[^"]*</F-USER>":? password mismatch, client: <HOST>)",
        R"(^[Ff]ailed password for (?:invalid user )?\S+ from <HOST>(?: port \d+)?\s*$)",
        R"(^id <F-ID>\w+</F-ID> \d+ <ADDR>$)",
        R"(^(a+)+$ <HOST>)",  // backtracks without end: the match limit must bound it
    };
    d.ignoreregex = {R"(client: 10\.)"};
    return Filter(d);
  }();
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t max_line = 1 + data[0] % 64;
  std::string_view file(reinterpret_cast<const char*>(data + 1), size - 1);

  auto whole = split(file, max_line, {file.size() + 1});
  for (const auto& l : whole.lines) {
    FUZZ_REQUIRE(l.size() <= max_line);
    FUZZ_REQUIRE(l.find('\n') == std::string::npos);
  }
  // However the writer's bytes fall into reads, the same lines.
  std::vector<std::size_t> sizes{1 + data[0] % 7u, 1 + data[0] / 7u % 13u, 64};
  auto chunked = split(file, max_line, sizes);
  FUZZ_REQUIRE(chunked.lines == whole.lines && chunked.consumed == whole.consumed &&
               chunked.in_cut == whole.in_cut);
  // A restart at a saved position (after some line, or inside a cut line) goes on with the
  // same lines: no line twice, none skipped, no tail of a cut line taken for a line.
  auto first = split(file.substr(0, file.size() / 2), max_line, {7});
  auto rest = split(file, max_line, {5}, first.consumed, first.in_cut);
  std::vector<std::string> joined = first.lines;
  joined.insert(joined.end(), rest.lines.begin(), rest.lines.end());
  FUZZ_REQUIRE(joined == whole.lines);

  for (const auto& l : whole.lines) {
    auto r = filter().process(l);
    if (r.kind == LineResult::Kind::Matched && r.host_is_ip) {
      // What fail2ban's ip4/ip6 groups can hold. It may still be no address ("::fff::1"): the
      // watcher parses it before any ban and drops what does not parse.
      bool address_chars = !r.host.empty() && r.host.find_first_not_of("0123456789abcdefABCDEF:.") ==
                                                    std::string::npos;
      if (!address_chars) std::fprintf(stderr, "host '%s' of line '%s'\n", r.host.c_str(), l.c_str());
      FUZZ_REQUIRE(address_chars);
    }
  }
  return 0;
}
