#include "watch/line_splitter.h"

namespace snigate::watch {

void LineSplitter::feed(std::string_view bytes, const LineFn& on_line) {
  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    if (in_cut_) {
      const auto dropped = nl == std::string_view::npos ? bytes.size() : nl + 1;
      consumed_ += dropped;
      bytes.remove_prefix(dropped);
      in_cut_ = nl == std::string_view::npos;
      continue;
    }
    const auto segment = bytes.substr(0, nl);  // up to the '\n', or all of it
    if (partial_.size() + segment.size() > max_line_) {
      const auto take = max_line_ - partial_.size();
      partial_.append(segment.substr(0, take));
      on_line(partial_);  // cut: no '\r' to drop, the line has not ended
      consumed_ += partial_.size();
      partial_.clear();
      in_cut_ = true;
      bytes.remove_prefix(take);
      continue;
    }
    if (nl == std::string_view::npos) {
      partial_.append(bytes);
      return;
    }
    std::string_view line = segment;
    if (!partial_.empty()) {
      partial_.append(segment);
      line = partial_;
    }
    const auto size = line.size() + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    on_line(line);
    consumed_ += size;
    partial_.clear();
    bytes.remove_prefix(nl + 1);
  }
}

void LineSplitter::flush(const LineFn& on_line) {
  if (partial_.empty()) return;
  on_line(partial_);
  consumed_ += partial_.size();
  partial_.clear();
}

void LineSplitter::reset(std::uint64_t consumed, bool in_cut_line) {
  consumed_ = consumed;
  in_cut_ = in_cut_line;
  partial_.clear();
}

}  // namespace snigate::watch
