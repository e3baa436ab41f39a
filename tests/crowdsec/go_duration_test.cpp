// Go's time.Duration strings, as LAPI writes remaining decision time.
#include <gtest/gtest.h>

#include "crowdsec/go_duration.h"

namespace snigate::crowdsec {
namespace {

using namespace std::chrono_literals;

TEST(GoDuration, ReadsWhatLapiWrites) {
  EXPECT_EQ(parse_go_duration("3h59m58.5s"), 3h + 59min + 58500ms);
  EXPECT_EQ(parse_go_duration("59m59.040721152s"), 59min + 59040ms);  // truncated to ms
  EXPECT_EQ(parse_go_duration("4h0m0s"), 4h);
  EXPECT_EQ(parse_go_duration("0s"), 0ms);
  EXPECT_EQ(parse_go_duration("0"), 0ms);
  EXPECT_EQ(parse_go_duration("-11.681365ms"), -11ms);  // an expired decision in "deleted"
  EXPECT_EQ(parse_go_duration("1.5h"), 90min);
  EXPECT_EQ(parse_go_duration("150ms"), 150ms);
  EXPECT_EQ(parse_go_duration("2000000us"), 2s);
  EXPECT_EQ(parse_go_duration("1\xC2\xB5s"), 0ms);
  EXPECT_EQ(parse_go_duration("+90s"), 90s);
  EXPECT_EQ(parse_go_duration("876000h"), std::chrono::hours(876000));  // a hundred years
}

TEST(GoDuration, RefusesWhatGoRefusesAndSaysWhy) {
  for (const char* bad : {"", "-", "s", "10", "1d", "1.s2", "h1", "1h 2m", ".s", "5x"}) {
    std::string error;
    EXPECT_FALSE(parse_go_duration(bad, &error)) << bad;
    EXPECT_NE(error.find("is not a duration"), std::string::npos) << error;
  }
  std::string error;
  EXPECT_FALSE(parse_go_duration("876001h", &error));
  EXPECT_NE(error.find("too long"), std::string::npos) << error;
  EXPECT_FALSE(parse_go_duration("99999999999999999999999h", &error));
}

}  // namespace
}  // namespace snigate::crowdsec
