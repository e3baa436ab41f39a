// The watcher's line splitter: lines as the file's writer ended them, however reads fall, and
// a line longer than the cut never yields a second, forged line.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "watch/line_splitter.h"

namespace snigate::watch {
namespace {

using Lines = std::vector<std::string>;

Lines feed_in(LineSplitter& s, const std::string& bytes, std::size_t chunk) {
  Lines out;
  for (std::size_t at = 0; at < bytes.size(); at += chunk)
    s.feed(std::string_view(bytes).substr(at, chunk), [&](std::string_view l) { out.emplace_back(l); });
  return out;
}

TEST(LineSplitter, SameLinesHoweverTheReadsFall) {
  const std::string file = "one\r\ntwo\n\nthree is longer than ten bytes\nfour";
  const Lines expected{"one", "two", "", "three is l"};
  for (std::size_t chunk : {1u, 2u, 3u, 7u, 64u}) {
    LineSplitter s(10);
    EXPECT_EQ(feed_in(s, file, chunk), expected) << chunk;
    EXPECT_EQ(s.pending(), 4u);  // "four" waits for its newline
    EXPECT_EQ(s.consumed(), file.size() - 4);
  }
}

TEST(LineSplitter, RestOfACutLineIsDroppedAlsoAfterAResume) {
  LineSplitter s(8);
  EXPECT_EQ(feed_in(s, "12345678forged", 3), Lines{"12345678"});
  EXPECT_TRUE(s.in_cut_line());
  LineSplitter resumed(8);
  resumed.reset(s.consumed(), s.in_cut_line());
  EXPECT_EQ(feed_in(resumed, " more\nnext\n", 4), Lines{"next"});
  EXPECT_FALSE(resumed.in_cut_line());
}

TEST(LineSplitter, FlushHandsOutALastLineWithoutNewline) {
  LineSplitter s;
  Lines out;
  s.feed("tail", [&](std::string_view l) { out.emplace_back(l); });
  s.flush([&](std::string_view l) { out.emplace_back(l); });
  EXPECT_EQ(out, Lines{"tail"});
  EXPECT_EQ(s.consumed(), 4u);
}

}  // namespace
}  // namespace snigate::watch
