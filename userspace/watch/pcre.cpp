#include "watch/pcre.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace snigate::watch {

namespace {

// One JIT stack per thread: PCRE2's default 32 KiB is too small for fail2ban's nested
// alternations, and a stack must never be shared by two threads matching at once.
struct ThreadMatchContext {
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(64 * 1024, 4 * 1024 * 1024, nullptr);
  ThreadMatchContext() {
    pcre2_jit_stack_assign(context, nullptr, stack);
    pcre2_set_match_limit(context, kMatchLimit);
    pcre2_set_depth_limit(context, kDepthLimit);
  }
  ~ThreadMatchContext() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
  }
};

pcre2_match_context* match_context() {
  thread_local ThreadMatchContext tls;
  return tls.context;
}

// What str.isspace() adds to PCRE2's UCP \s: the information separators (Unicode B and S).
// (PCRE2 also counts U+180E, which Python does not: a Mongolian vowel separator in a log
// line is not worth a class of its own.)
constexpr std::string_view kExtraSpaces = R"(\x{1c}-\x{1f})";

std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  auto cont = [&](std::size_t k) { return k < s.size() && (b(k) & 0xC0) == 0x80; };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(i + 1) || !cont(i + 2)) return 0;
    if (c == 0xE0 && b(i + 1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(i + 1) > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    if (c == 0xF0 && b(i + 1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(i + 1) > 0x8F) return 0;  // beyond U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

std::string_view to_valid_utf8(std::string_view text, std::string& storage) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto n = utf8_sequence(text, i);
    if (n == 0) break;
    i += n;
  }
  if (i == text.size()) return text;
  storage.assign(text.substr(0, i));
  while (i < text.size()) {
    auto n = utf8_sequence(text, i);
    if (n == 0) {
      storage += "\xEF\xBF\xBD";
      ++i;
    } else {
      storage.append(text.substr(i, n));
      i += n;
    }
  }
  return storage;
}

std::string python_spaces(const std::string& pattern) {
  std::string out;
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      char e = pattern[++i];
      if (e == 's') {
        out += in_class ? "\\s" + std::string(kExtraSpaces)
                        : "[\\s" + std::string(kExtraSpaces) + "]";
      } else if (e == 'S' && !in_class) {
        out += "[^\\s" + std::string(kExtraSpaces) + "]";
      } else {
        out += c;  // other escapes, \S inside a class too, as they are
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' first in the class (after an optional '^') is a literal, as in Python.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

struct Pcre::Code {
  pcre2_code* code = nullptr;
  std::uint32_t captures = 0;
  ~Code() { pcre2_code_free(code); }
};

struct Match::Data {
  pcre2_match_data* data = nullptr;
  std::uint32_t pairs = 0;
  int rc = 0;
  ~Data() { pcre2_match_data_free(data); }
};

Pcre::Pcre(const std::string& pattern, bool caseless, bool multiline)
    : pattern_(pattern), code_(new Code) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  std::uint32_t options = PCRE2_DUPNAMES | PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF |
                          (caseless ? PCRE2_CASELESS : 0) | (multiline ? PCRE2_MULTILINE : 0);
  const std::string source = python_spaces(pattern);
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(),
                              options, &error, &offset, nullptr);
  if (!code_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    throw RegexError(pattern + ": " + reinterpret_cast<const char*>(message) + " at offset " +
                     std::to_string(offset));
  }
  pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE);  // no JIT: the interpreter still works
  pcre2_pattern_info(code_->code, PCRE2_INFO_CAPTURECOUNT, &code_->captures);
}

Pcre::~Pcre() = default;
Pcre::Pcre(Pcre&&) noexcept = default;
Pcre& Pcre::operator=(Pcre&&) noexcept = default;

bool Pcre::search(std::string_view subject, Match& match, std::size_t start) const {
  auto& d = *match.data_;
  if (d.pairs < code_->captures + 1) {
    pcre2_match_data_free(d.data);
    d.pairs = std::max<std::uint32_t>(code_->captures + 1, 32);
    d.data = pcre2_match_data_create(d.pairs, nullptr);
  }
  match.subject_ = subject;
  d.rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(),
                     start, 0, d.data, match_context());
  return d.rc > 0;
}

bool Pcre::search(std::string_view subject) const {
  Match m;
  return search(subject, m);
}

int Pcre::group(std::string_view name) const {
  auto all = groups(name);
  return all.empty() ? -1 : all.front();
}

std::vector<int> Pcre::groups(std::string_view name) const {
  std::vector<int> out;
  std::uint32_t count = 0, entry_size = 0;
  PCRE2_SPTR table = nullptr;
  pcre2_pattern_info(code_->code, PCRE2_INFO_NAMECOUNT, &count);
  pcre2_pattern_info(code_->code, PCRE2_INFO_NAMEENTRYSIZE, &entry_size);
  pcre2_pattern_info(code_->code, PCRE2_INFO_NAMETABLE, &table);
  for (std::uint32_t i = 0; i < count; ++i) {
    PCRE2_SPTR entry = table + i * entry_size;
    std::string_view entry_name(reinterpret_cast<const char*>(entry + 2));
    if (entry_name == name) out.push_back((entry[0] << 8) | entry[1]);
  }
  return out;
}

std::vector<std::string> Pcre::group_names() const {
  std::vector<std::string> out;
  std::uint32_t count = 0, entry_size = 0;
  PCRE2_SPTR table = nullptr;
  pcre2_pattern_info(code_->code, PCRE2_INFO_NAMECOUNT, &count);
  pcre2_pattern_info(code_->code, PCRE2_INFO_NAMEENTRYSIZE, &entry_size);
  pcre2_pattern_info(code_->code, PCRE2_INFO_NAMETABLE, &table);
  for (std::uint32_t i = 0; i < count; ++i)
    out.emplace_back(reinterpret_cast<const char*>(table + i * entry_size + 2));
  return out;
}

Match::Match() : data_(new Data) {}
Match::~Match() = default;

bool Match::limit_hit() const {
  auto rc = data_->rc;
  return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
         rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT;
}

std::optional<std::pair<std::size_t, std::size_t>> Match::span(int n) const {
  if (n < 0 || data_->rc <= 0 || n >= data_->rc) return std::nullopt;
  PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data_->data);
  if (ov[2 * n] == PCRE2_UNSET) return std::nullopt;
  return std::make_pair(static_cast<std::size_t>(ov[2 * n]), static_cast<std::size_t>(ov[2 * n + 1]));
}

std::optional<std::string_view> Match::str(int n) const {
  auto s = span(n);
  if (!s) return std::nullopt;
  return subject_.substr(s->first, s->second - s->first);
}

std::optional<std::string_view> Match::first(const std::vector<int>& numbers) const {
  for (int n : numbers)
    if (auto s = str(n)) return s;
  return std::nullopt;
}

}  // namespace snigate::watch
