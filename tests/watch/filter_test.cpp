// Filters as a user writes them inline, and the dates fail2ban reads from lines.
#include <gtest/gtest.h>

#include <ctime>

#include "watch/date_detector.h"
#include "watch/filter.h"

namespace snigate::watch {
namespace {

using Clock = std::chrono::system_clock;

Clock::time_point utc(int y, int mo, int d, int h, int mi, int s) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return Clock::from_time_t(timegm(&tm));
}

Clock::time_point local(int y, int mo, int d, int h, int mi, int s) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  tm.tm_isdst = -1;
  return Clock::from_time_t(std::mktime(&tm));
}

FilterDefinition inline_filter(std::vector<std::string> failregex,
                               std::vector<std::string> ignoreregex = {}) {
  FilterDefinition d;
  d.source = "test";
  d.failregex = std::move(failregex);
  d.ignoreregex = std::move(ignoreregex);
  return d;
}

TEST(DateDetector, ReadsTheCommonLogFormats) {
  DateDetector dd;
  auto now = utc(2026, 11, 23, 12, 0, 0);
  struct Case {
    std::string line, date;
    Clock::time_point when;
  } cases[] = {
      {"2026-11-23T11:04:05+00:00 host sshd[1]: x", "2026-11-23T11:04:05+00:00",
       utc(2026, 11, 23, 11, 4, 5)},
      {"Nov 23 11:04:05 host sshd[1]: x", "Nov 23 11:04:05", local(2026, 11, 23, 11, 4, 5)},
      {"192.0.2.7 - - [23/Nov/2026:11:04:05 +0100] \"GET / HTTP/1.1\" 401 0",
       "23/Nov/2026:11:04:05 +0100", utc(2026, 11, 23, 10, 4, 5)},
      {"2026/11/23 11:04:05 [error] 7#7: *1 x", "2026/11/23 11:04:05",
       local(2026, 11, 23, 11, 4, 5)},
  };
  for (const auto& c : cases) {
    auto m = dd.find(c.line, now);
    ASSERT_TRUE(m) << c.line;
    EXPECT_EQ(c.line.substr(m->begin, m->end - m->begin), c.date);
    ASSERT_TRUE(m->time) << c.line;
    EXPECT_EQ(*m->time, c.when) << c.line;
  }
}

TEST(DateDetector, SyslogDateInTheFutureIsLastYear) {
  DateDetector dd;
  auto m = dd.find("Dec 31 23:59:59 host x", utc(2026, 1, 1, 0, 0, 30));
  ASSERT_TRUE(m && m->time);
  EXPECT_EQ(*m->time, local(2025, 12, 31, 23, 59, 59));
}

// A log line's date is its writer's choice: an epoch past what the clock holds (found by the
// watch fuzzer) is read as far in the future, never wrapped into the past.
TEST(DateDetector, EpochBeyondTheClocksRangeIsTheFarFuture) {
  DateDetector dd;
  auto now = utc(2026, 11, 23, 12, 0, 0);
  auto m = dd.find("99999999999 login failed from 192.0.2.1", now);
  ASSERT_TRUE(m && m->time);
  EXPECT_GT(*m->time, now);
}

TEST(DateDetector, CustomPatternAndNone) {
  DateDetector custom("^%d.%m.%Y %H:%M ");
  auto m = custom.find("23.11.2026 11:04 login failed");
  ASSERT_TRUE(m && m->time);
  EXPECT_EQ(*m->time, local(2026, 11, 23, 11, 4, 0));
  EXPECT_TRUE(DateDetector("{NONE}").disabled());
  EXPECT_THROW(DateDetector("%Q"), std::invalid_argument);
}

TEST(Filter, HostTagMatchesIPv4AndIPv6AndCutsTheDate) {
  // The date is cut out before matching, as fail2ban does: "[]" is what remains of it.
  Filter f(inline_filter({R"(^<HOST> \S+ \S+ \[\] "POST /login)"}));
  auto r = f.process(R"(2001:db8::7 - - [23/Nov/2026:11:04:05 +0000] "POST /login HTTP/1.1" 401)");
  ASSERT_EQ(r.kind, LineResult::Kind::Matched);
  EXPECT_EQ(r.host, "2001:db8::7");
  EXPECT_TRUE(r.host_is_ip);
  ASSERT_TRUE(r.time);
  EXPECT_EQ(*r.time, utc(2026, 11, 23, 11, 4, 5));

  r = f.process(R"(192.0.2.9 - - [23/Nov/2026:11:04:05 +0000] "POST /login HTTP/1.1" 401)");
  EXPECT_EQ(r.host, "192.0.2.9");
  r = f.process(R"(192.0.2.9 - - [23/Nov/2026:11:04:05 +0000] "GET / HTTP/1.1" 200)");
  EXPECT_EQ(r.kind, LineResult::Kind::Missed);
}

TEST(Filter, IgnoreregexAndCustomTags) {
  Filter f(inline_filter({R"(^auth failed for <F-USER>\S+</F-USER> from <ADDR>)"},
                         {R"(for admin\b)"}));
  auto r = f.process("auth failed for bob from 198.51.100.4");
  ASSERT_EQ(r.kind, LineResult::Kind::Matched);
  EXPECT_EQ(r.user, "bob");
  EXPECT_EQ(r.host, "198.51.100.4");
  EXPECT_EQ(f.process("auth failed for admin from 198.51.100.4").kind, LineResult::Kind::Ignored);
}

TEST(Filter, FailureIdWithoutHost) {
  Filter f(inline_filter({R"(^session <F-ID/> rejected)"}));
  auto r = f.process("session abc123 rejected");
  ASSERT_EQ(r.kind, LineResult::Kind::Matched);
  EXPECT_EQ(r.host, "abc123");
  EXPECT_FALSE(r.host_is_ip);
}

TEST(Filter, BadRegexNamesTheFilter) {
  try {
    Filter f(inline_filter({"^(unclosed <HOST>"}));
    FAIL() << "compiled";
  } catch (const FilterError& e) {
    EXPECT_NE(std::string(e.what()).find("test: failregex does not compile"), std::string::npos)
        << e.what();
  }
}

// A regex that backtracks exponentially gives up at the match limit within bounded work, and
// the line says so: it is not a silent miss.
TEST(Filter, CatastrophicRegexGivesUpAtTheMatchLimitAndSaysSo) {
  Filter f(inline_filter({R"(^(a+)+$ <HOST>)", R"(^login failed from <HOST>$)"}));
  auto r = f.process(std::string(30, 'a') + "! from 192.0.2.3");
  EXPECT_EQ(r.kind, LineResult::Kind::Missed);
  EXPECT_TRUE(r.limit_hit);
  auto ok = f.process("login failed from 192.0.2.4");
  EXPECT_EQ(ok.kind, LineResult::Kind::Matched);
  EXPECT_FALSE(ok.limit_hit);
  EXPECT_EQ(regexes_that_give_up(inline_filter({R"(^(a+)+$ <HOST>)", R"(^x <HOST>$)"})),
            std::vector<std::string>{R"(^(a+)+$ <HOST>)"});
}

TEST(Filter, FailregexWithoutAHostGroupIsRefused) {
  try {
    Filter f(inline_filter({R"(^login failed for \S+$)"}));
    FAIL() << "accepted a failregex that can never ban";
  } catch (const FilterError& e) {
    EXPECT_NE(std::string(e.what()).find("has no <HOST>"), std::string::npos) << e.what();
  }
  // A host group in prefregex is enough, as in fail2ban.
  auto d = inline_filter({R"(^login failed$)"});
  d.prefregex = R"(^from <HOST>: <F-CONTENT>.+</F-CONTENT>$)";
  Filter f(d);
  EXPECT_EQ(f.process("from 192.0.2.5: login failed").host, "192.0.2.5");
}

// fail2ban matches with Python's re on decoded lines: \s is str.isspace() (U+001C..U+001F,
// U+00A0, U+3000 are spaces), \S never takes half of a multi-byte character, \d takes any
// decimal digit, and undecodable bytes are U+FFFD.
TEST(Filter, ClassesMeanWhatTheyMeanInPythonsRe) {
  Filter spaces(inline_filter({R"(auth fail\s+from <HOST>\s*$)"}));
  for (const char* line : {"auth fail\x1f" "from 192.0.2.1", "auth fail\u00a0from 192.0.2.2",
                           "auth fail\u3000from 192.0.2.3", "auth fail from 192.0.2.4\x1c"})
    EXPECT_EQ(spaces.process(line).kind, LineResult::Kind::Matched) << line;
  Filter words(inline_filter({R"(^user \S+ denied from <HOST>$)"}));
  EXPECT_EQ(words.process("user bob\u00a0x denied from 192.0.2.5").kind, LineResult::Kind::Missed);
  EXPECT_EQ(words.process("user \xff denied from 192.0.2.7").host, "192.0.2.7");
  EXPECT_EQ(words.process("user b\xc3 denied from 192.0.2.8").host, "192.0.2.8");
  Filter digits(inline_filter({R"(^id \d+ bad from <HOST>$)"}));
  EXPECT_EQ(digits.process("id \u0663\u0664 bad from 192.0.2.6").host, "192.0.2.6");
  Filter in_class(inline_filter({R"(^user [^\s]+ from <HOST>$)"}));
  EXPECT_EQ(in_class.process("user a\x1e" "b from 192.0.2.9").kind, LineResult::Kind::Missed);
}

TEST(ExpandTags, ClosesOnlyOpenedCustomTags) {
  EXPECT_EQ(expand_fail2ban_tags("<F-USER>x</F-USER> </F-OTHER>"), "(?P<user>x) </F-OTHER>");
  EXPECT_EQ(expand_fail2ban_tags("<F-ALT_USER1>u</F-ALT_USER1>"), "(?P<alt_user1>u)");
}

}  // namespace
}  // namespace snigate::watch
