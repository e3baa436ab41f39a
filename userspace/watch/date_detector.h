#pragma once
// Finds and reads the timestamp of a log line the way fail2ban's DateDetector does: the same
// default templates in the same order (regexes taken from fail2ban 1.0), `{^LN-BEG}` for
// line-start-only, `{NONE}`, `EPOCH`, or a custom strptime-style datepattern. The span of the
// date is reported so the matcher can cut it out of the line exactly like fail2ban
// (failregex sees the text before the date followed by the text after it).
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace snigate::watch {

struct DateMatch {
  std::size_t begin = 0;  // the date's span inside the line
  std::size_t end = 0;
  std::optional<std::chrono::system_clock::time_point> time;  // nullopt: unreadable
};

class DateDetector {
 public:
  // `pattern`: empty for all default templates, else as fail2ban's `datepattern`
  // (several patterns one per line). Throws std::invalid_argument on a bad pattern.
  explicit DateDetector(const std::string& pattern = "");
  ~DateDetector();
  DateDetector(DateDetector&&) noexcept;
  DateDetector& operator=(DateDetector&&) noexcept;

  // Years missing from the line (syslog) are taken from `now`, going back one year when the
  // result would lie more than a day in the future.
  std::optional<DateMatch> find(std::string_view line,
                                std::chrono::system_clock::time_point now =
                                    std::chrono::system_clock::now()) const;
  bool disabled() const;  // {NONE}: lines carry no date

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace snigate::watch
