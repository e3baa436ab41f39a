#pragma once
// Cuts a log file's bytes into lines, resumably: bytes come in chunks of any size, and the
// lines handed out are the same however the chunks fall. A line ends at '\n' (a '\r' before
// it is dropped). A line longer than `max_line` is cut: its first max_line bytes are handed
// out as the line, and the rest of it, up to and with its '\n', is dropped. Handing the rest
// out as a line of its own would let whoever writes one long line choose the next line the
// filter sees (and so the address banned); fail2ban never splits a line at all.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace snigate::watch {

inline constexpr std::size_t kMaxLine = 1024 * 1024;  // memory per followed file stays bounded

class LineSplitter {
 public:
  using LineFn = std::function<void(std::string_view line)>;

  explicit LineSplitter(std::size_t max_line = kMaxLine) : max_line_(max_line) {}

  // The next bytes of the file; `on_line` gets each line completed by them.
  void feed(std::string_view bytes, const LineFn& on_line);
  // The writer has moved on: a last line without its '\n' is complete.
  void flush(const LineFn& on_line);
  // Starts over at `consumed` (a saved position, or 0 after a truncation).
  void reset(std::uint64_t consumed = 0, bool in_cut_line = false);

  // Bytes taken by lines handed out or dropped: where a restart goes on.
  std::uint64_t consumed() const { return consumed_; }
  // Bytes of a line still waiting for its '\n' (never more than max_line).
  std::size_t pending() const { return partial_.size(); }
  // Inside the dropped rest of a cut line: saved with the position, so a restart drops it too.
  bool in_cut_line() const { return in_cut_; }

 private:
  std::size_t max_line_;
  std::string partial_;
  std::uint64_t consumed_ = 0;
  bool in_cut_ = false;
};

}  // namespace snigate::watch
