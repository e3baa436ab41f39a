#include "watch/date_detector.h"

#include <cstdlib>
#include <ctime>
#include <map>
#include <sstream>
#include <stdexcept>

#include "watch/pcre.h"

namespace snigate::watch {

namespace {

using Clock = std::chrono::system_clock;

// fail2ban 1.0's strptime table (server/strptime.py), %ExY built the way fail2ban builds it:
// the decades from 2000 up to three years ahead.
std::string year_re() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  int year = tm.tm_year + 1900;
  std::map<std::string, bool> cents;
  for (int y = 2000; y <= year + 3; ++y) cents[std::to_string(y).substr(0, 3)] = true;
  std::string alt;
  for (const auto& [c, _] : cents) alt += (alt.empty() ? "" : "|") + c;
  return "(?P<Y>(?:" + alt + ")\\d)";
}

const std::map<std::string, std::string>& time_re() {
  static const std::map<std::string, std::string> table = {
      {"%", "%"},
      {"A", "(?P<A>wednesday|thursday|saturday|tuesday|monday|friday|sunday)"},
      {"B", "(?P<B>september|february|november|december|january|october|august|march|april|"
            "june|july|may)"},
      {"ExH", "(?P<H>[0-1]\\d|2[0-3])"},
      {"ExM", "(?P<M>[0-5]\\d)"},
      {"ExS", "(?P<S>[0-5]\\d|6[0-1])"},
      {"ExY", year_re()},
      {"ExZ", "(?P<Z>[A-Z](?:[A-Z]{2,4})?)"},
      {"Exd", "(?P<d>[1-2]\\d|0[1-9]|3[0-1])"},
      {"Exk", " ?(?P<H>[0-1]?\\d|2[0-3])"},
      {"Exl", " ?(?P<I>1[0-2]|\\d)"},
      {"Exm", "(?P<m>0[1-9]|1[0-2])"},
      {"Exy", "(?P<y>\\d{2})"},
      {"Exz", "(?P<z>(?:[A-Z](?:[A-Z]{2,4})?)?[+-][01]\\d(?::?\\d{2})?|[A-Z](?:[A-Z]{2,4})?)"},
      {"H", "(?P<H>[0-1]?\\d|2[0-3])"},
      {"I", "(?P<I>1[0-2]|0[1-9]|[1-9])"},
      {"M", "(?P<M>[0-5]?\\d)"},
      {"S", "(?P<S>[0-5]?\\d|6[0-1])"},
      {"Y", "(?P<Y>\\d{4})"},
      {"Z", "(?P<Z>Z|[A-Z]{3,5})"},
      {"a", "(?P<a>mon|tue|wed|thu|fri|sat|sun)"},
      {"b", "(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)"},
      {"d", "(?P<d>[1-2]\\d|[0 ]?[1-9]|3[0-1])"},
      {"f", "(?P<f>[0-9]{1,6})"},
      {"j", "(?P<j>36[0-6]|3[0-5]\\d|[1-2]\\d\\d|0[1-9]\\d|00[1-9]|[1-9]\\d|0[1-9]|[1-9])"},
      {"k", " ?(?P<H>[0-2]?\\d)"},
      {"l", " ?(?P<I>1?\\d)"},
      {"m", "(?P<m>0?[1-9]|1[0-2])"},
      {"p", "(?P<p>am|pm)"},
      {"y", "(?P<y>\\d\\d)"},
      {"z", "(?P<z>Z|UTC|GMT|[+-][01]\\d(?::?\\d{2})?)"},
  };
  return table;
}

// fail2ban 1.0's DEFAULT_TEMPLATES, in its order (TAI64N left out: no such logs here).
const std::vector<std::string> kDefaultTemplates = {
    R"(%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?)",
    R"((?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?)",
    R"((?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?)",
    R"(%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S)",
    R"(%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?)",
    R"(%m/%d/%ExY:%H:%M:%S)",
    R"(%m-%d-%ExY %k:%M:%S(?:\.%f)?)",
    "EPOCH",
    R"({^LN-BEG}%H:%M:%S)",
    R"(^<%m/%d/%Exy@%H:%M:%S>)",
    R"(%Exy%Exm%Exd  ?%H:%M:%S)",
    R"(%b %d, %ExY %I:%M:%S %p)",
    R"(^%b-%d-%Exy %k:%M:%S)",
    R"(%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?)",
    R"((?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?)",
    R"((?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?)",
};

const char* kEpochFree =
    R"(((?:^|(?P<square>(?<=^\[))|(?P<selinux>(?<=\baudit\()))\d{10,11}\b(?:\.\d{3,6})?)(?:(?(selinux)(?=:\d+\)))|(?(square)(?=\]))))";
const char* kEpochLineBegin = R"(((?P<square>(?<=^\[))?\d{10,11}\b(?:\.\d{3,6})?)(?(square)(?=\])))";

const Pcre& re(const char* pattern) {
  thread_local std::map<const char*, Pcre> cache;
  auto it = cache.find(pattern);
  if (it == cache.end()) it = cache.emplace(pattern, Pcre(pattern)).first;
  return it->second;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

std::string convert_directives(const std::string& pattern) {
  const auto& table = time_re();
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '%') {
      out += pattern[i];
      continue;
    }
    std::string key3 = pattern.substr(i + 1, 3), key1 = pattern.substr(i + 1, 1);
    if (key3.size() == 3 && starts_with(key3, "Ex") && table.count(key3)) {
      out += table.at(key3);
      i += 3;
    } else if (!key1.empty() && table.count(key1)) {
      out += table.at(key1);
      i += 1;
    } else {
      throw std::invalid_argument("datepattern '" + pattern + "': unknown directive at '%" +
                                  key1 + "'");
    }
  }
  return out;
}

enum Field { kY, ky, km, kb, kB, kd, kH, kI, kp, kM, kS, kf, kz, kZ, kFields };
const char* const kFieldNames[kFields] = {"Y", "y", "m", "b", "B", "d", "H",
                                          "I", "p", "M", "S", "f", "z", "Z"};

struct Template {
  std::string name;
  Pcre regex;
  bool line_begin = false;
  bool epoch = false;
  std::vector<int> fields[kFields];  // group numbers per strptime field, looked up once

  Template(std::string n, Pcre r, bool lb, bool ep)
      : name(std::move(n)), regex(std::move(r)), line_begin(lb), epoch(ep) {
    for (int f = 0; f < kFields; ++f) fields[f] = regex.groups(kFieldNames[f]);
  }
};

// DateTemplate.setRegex: word/line boundaries, the date in group 1, "**" markers removed.
Template make_template(const std::string& name, std::string regex, bool caseless,
                       int word_begin /*0 no, 1 word, 2 line start*/, bool word_end,
                       bool epoch) {
  static const char* kNoBoundBeg = R"(^\(*(?:\(\?\w+\))?(?:\^|\(*\*\*|\((?:\?:)?\^))";
  static const char* kNoBoundEnd = R"((?<!\\)(?:\$\)?|\\b|\\s|\*\*\)*)$)";
  static const char* kGrouped = R"((?<!\(\?)(?<!\\)\((?!\?))";
  static const char* kGroup = R"(^((?:\(\?\w+\))?\^?(?:\(\?\w+\))?)(.*?)(\$?)$)";
  static const char* kLineBoundBeg = R"(^(?:\(\?\w+\))?(?:\^|\((?:\?:)?\^(?!\|)))";
  static const char* kDelBounds = R"(^\(*(?:\(\?\w+\))?\(*\*\*|(?<!\\)\*\*\)*$)";

  bool bound_begin = word_begin && !re(kNoBoundBeg).search(regex);
  bool bound_end = word_end && !re(kNoBoundEnd).search(regex);
  if (!re(kGrouped).search(regex)) {
    Match m;
    if (re(kGroup).search(regex, m))
      regex = std::string(*m.str(1)) + "(" + std::string(*m.str(2)) + ")" + std::string(*m.str(3));
  }
  bool line_begin = false;
  if (bound_begin) {
    if (word_begin == 2) {
      regex = R"(^(?:\W{0,2})?)" + regex;
      line_begin = true;
    } else {
      regex = R"((?=^|\b|\W))" + regex;
    }
  }
  if (bound_end) regex += R"((?=\b|\W|$))";
  if (!line_begin && re(kLineBoundBeg).search(regex)) line_begin = true;
  // "**" at either end only switches a boundary off; the marker itself goes.
  std::string cleaned = regex;
  if (regex.find("**") != std::string::npos) {
    cleaned.clear();
    std::size_t pos = 0;
    Match m;
    while (pos < regex.size() && re(kDelBounds).search(regex, m, pos)) {
      auto [b, e] = *m.span(0);
      cleaned += regex.substr(pos, b - pos);
      std::string hit = regex.substr(b, e - b);
      for (auto at = hit.find("**"); at != std::string::npos; at = hit.find("**")) hit.erase(at, 2);
      cleaned += hit;
      pos = e > b ? e : e + 1;
      if (e == b && b < regex.size()) cleaned += regex[b];
    }
    if (pos < regex.size()) cleaned += regex.substr(pos);
  }
  return Template(name, Pcre(cleaned, caseless), line_begin, epoch);
}

// DatePatternRegex (and DateEpoch for "EPOCH") from a fail2ban datepattern line.
Template pattern_template(std::string pattern) {
  std::string name = pattern;
  int word_begin = 1;
  bool word_end = true;
  if (starts_with(pattern, "{UNB}")) {
    pattern.erase(0, 5);
    word_begin = 0;
    word_end = false;
  }
  if (word_begin && starts_with(pattern, "{^LN-BEG}")) {
    pattern.erase(0, 9);
    word_begin = 2;
  }
  if (pattern == "EPOCH" || pattern == "^EPOCH") {
    bool line = word_begin == 2 || pattern[0] == '^';
    return make_template(name, line ? kEpochLineBegin : kEpochFree, false, line ? 2 : 0, true,
                         true);
  }
  static const char* kAlpha = R"((?<!%)%[aAbBpc])";
  bool caseless = re(kAlpha).search(pattern);
  return make_template(name, convert_directives(pattern), caseless, word_begin, word_end,
                       false);
}

int month_from_name(std::string_view s) {
  static const char* names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                "jul", "aug", "sep", "oct", "nov", "dec"};
  std::string l;
  for (char c : s.substr(0, 3)) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (int i = 0; i < 12; ++i)
    if (l == names[i]) return i + 1;
  return 0;
}

int to_int(std::string_view s) {
  int v = 0;
  for (char c : s)
    if (c >= '0' && c <= '9') v = v * 10 + (c - '0');
  return v;
}

std::optional<Clock::time_point> read_time(const Template& t, const Match& m,
                                           Clock::time_point now) {
  auto g = [&](Field f) { return m.first(t.fields[f]); };
  if (t.epoch) {
    auto s = m.str(1);
    if (!s) return std::nullopt;
    // strtod, not stod: \d takes any Unicode digit (pcre.h), and stod throws on those.
    double v = std::strtod(std::string(*s).c_str(), nullptr);
    // An 11-digit epoch can lie past what the clock holds (year 2262): a line's date is the
    // writer's choice, so clamp it (a line from the future counts as now anyway).
    if (!(v >= 0)) v = 0;
    if (v > 9e9) v = 9e9;
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(v)));
  }
  std::tm tm{};
  bool have_year = false, have_date = false;
  // Fields the line lacks come from today (local time); most lines carry them all.
  if ((!g(kY) && !g(ky)) || !g(kd)) {
    std::time_t now_t = Clock::to_time_t(now);
    std::tm now_tm{};
    localtime_r(&now_t, &now_tm);
    tm.tm_year = now_tm.tm_year;
    tm.tm_mon = now_tm.tm_mon;
    tm.tm_mday = now_tm.tm_mday;
  }
  if (auto y = g(kY)) {
    tm.tm_year = to_int(*y) - 1900;
    have_year = true;
  } else if (auto y2 = g(ky)) {
    tm.tm_year = to_int(*y2) + 100;
    have_year = true;
  }
  if (auto mo = g(km)) {
    tm.tm_mon = to_int(*mo) - 1;
    have_date = true;
  } else if (auto b = g(kb)) {
    tm.tm_mon = month_from_name(*b) - 1;
    have_date = true;
  } else if (auto bb = g(kB)) {
    tm.tm_mon = month_from_name(*bb) - 1;
    have_date = true;
  }
  if (auto d = g(kd)) tm.tm_mday = to_int(*d);
  if (auto h = g(kH)) {
    tm.tm_hour = to_int(*h);
  } else if (auto i = g(kI)) {
    tm.tm_hour = to_int(*i) % 12;
    if (auto p = g(kp); p && (p->front() == 'p' || p->front() == 'P')) tm.tm_hour += 12;
  }
  if (auto mi = g(kM)) tm.tm_min = to_int(*mi);
  if (auto s = g(kS)) tm.tm_sec = to_int(*s);
  std::optional<long> offset;  // seconds east of UTC
  if (auto z = g(kz)) {
    std::string_view zs = *z;
    auto sign = zs.find_first_of("+-");
    if (sign == std::string_view::npos) {
      offset = 0;  // Z, UTC, GMT
    } else {
      std::string digits;
      for (char c : zs.substr(sign + 1))
        if (c != ':') digits += c;
      long hh = to_int(std::string_view(digits).substr(0, 2));
      long mm = digits.size() >= 4 ? to_int(std::string_view(digits).substr(2, 2)) : 0;
      offset = (zs[sign] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
    }
  } else if (auto zn = g(kZ); zn && (*zn == "Z" || *zn == "UTC" || *zn == "GMT")) {
    offset = 0;
  }
  auto build = [&](std::tm t2) -> Clock::time_point {
    std::time_t secs;
    if (offset) {
      secs = timegm(&t2) - *offset;
    } else {
      t2.tm_isdst = -1;
      secs = std::mktime(&t2);
    }
    auto tp = Clock::from_time_t(secs);
    if (auto f = g(kf)) {
      std::string frac(*f);
      frac.resize(6, '0');
      tp += std::chrono::microseconds(to_int(frac));
    }
    return tp;
  };
  auto tp = build(tm);
  // A year-less date (syslog) more than a day ahead belongs to last year.
  if (!have_year && have_date && tp > now + std::chrono::hours(24)) {
    tm.tm_year -= 1;
    tp = build(tm);
  }
  return tp;
}

}  // namespace

struct DateDetector::Impl {
  std::vector<Template> templates;
  bool disabled = false;
  mutable std::size_t last = 0;  // the template that matched last is tried first

  void add(Template t) {
    for (const auto& existing : templates)
      if (existing.name == t.name) return;
    templates.push_back(std::move(t));
  }

  // fail2ban's default set: anchored copies first (weight 100), then the originals;
  // `line_begin_only` keeps those anchored at the line start ({^LN-BEG}).
  void add_defaults(bool line_begin_only) {
    std::vector<Template> anchored, plain;
    for (const auto& p : kDefaultTemplates) {
      Template t = pattern_template(p);
      if (!starts_with(p, "{^LN-BEG}") && p[0] != '^') anchored.push_back(pattern_template("{^LN-BEG}" + p));
      plain.push_back(std::move(t));
    }
    for (auto& t : anchored) add(std::move(t));
    for (auto& t : plain)
      if (!line_begin_only || t.line_begin) add(std::move(t));
  }

  // "{DATE}" in a pattern: each default template's pattern in its place.
  void add_prematch(const std::string& pattern) {
    auto at = pattern.find("{DATE}");
    for (const auto& p : kDefaultTemplates) {
      if (p == "EPOCH") continue;
      std::string unbound = starts_with(p, "{^LN-BEG}") ? p.substr(9) : p;
      add(pattern_template(pattern.substr(0, at) + unbound + pattern.substr(at + 6)));
    }
  }
};

DateDetector::DateDetector(const std::string& pattern) : impl_(new Impl) {
  std::istringstream lines(pattern);
  bool any = false;
  try {
    for (std::string line; std::getline(lines, line);) {
      auto b = line.find_first_not_of(" \t");
      if (b == std::string::npos) continue;
      line = line.substr(b, line.find_last_not_of(" \t") - b + 1);
      any = true;
      if (line == "{^LN-BEG}") impl_->add_defaults(true);
      else if (line == "{DEFAULT}") impl_->add_defaults(false);
      else if (line == "{NONE}") impl_->disabled = true;
      else if (line.find("{DATE}") != std::string::npos) impl_->add_prematch(line);
      else impl_->add(pattern_template(line));
    }
  } catch (const RegexError& e) {
    throw std::invalid_argument(std::string("datepattern: ") + e.what());
  }
  if (!any) impl_->add_defaults(false);
}

DateDetector::~DateDetector() = default;
DateDetector::DateDetector(DateDetector&&) noexcept = default;
DateDetector& DateDetector::operator=(DateDetector&&) noexcept = default;

bool DateDetector::disabled() const { return impl_->disabled; }

std::optional<DateMatch> DateDetector::find(std::string_view line,
                                            std::chrono::system_clock::time_point now) const {
  if (impl_->disabled || impl_->templates.empty()) return std::nullopt;
  auto& ts = impl_->templates;
  Match m;
  auto try_one = [&](std::size_t i) -> std::optional<DateMatch> {
    if (!ts[i].regex.search(line, m)) return std::nullopt;
    auto span = m.span(1);
    if (!span) span = m.span(0);
    impl_->last = i;
    return DateMatch{span->first, span->second, read_time(ts[i], m, now)};
  };
  if (auto hit = try_one(impl_->last)) return hit;
  for (std::size_t i = 0; i < ts.size(); ++i)
    if (i != impl_->last)
      if (auto hit = try_one(i)) return hit;
  return std::nullopt;
}

}  // namespace snigate::watch
