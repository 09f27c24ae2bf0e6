// GrepContent on one file's bytes: line splitting and numbering, modes, binary files, caps.
#include <gtest/gtest.h>

#include "files/grep.h"

namespace brig::files {
namespace {

GrepResult Scan(const std::string& pattern, const std::string& content, GrepOptions opt = {}, bool* more = nullptr) {
  StatusOr<LineRegex> re = LineRegex::Compile(pattern, opt.case_insensitive);
  EXPECT_TRUE(re.ok());
  GrepResult r;
  int64_t steps = opt.max_steps;
  int64_t lines = opt.max_lines;
  const bool keep_going = GrepContent(re.value(), "/f", content, opt, &steps, &lines, &r);
  if (more) *more = keep_going;
  return r;
}

TEST(GrepTest, LineNumbersAndLastLineWithoutNewline) {
  GrepResult r = Scan("x", "x1\nno\n\nx4\r\nx5");
  ASSERT_EQ(r.files.size(), 1u);
  const auto& lines = r.files[0].lines;
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].number, 1);
  EXPECT_EQ(lines[0].text, "x1");
  EXPECT_EQ(lines[1].number, 4);
  EXPECT_EQ(lines[1].text, "x4\r");
  EXPECT_EQ(lines[2].number, 5);
  EXPECT_EQ(lines[2].text, "x5");
  EXPECT_EQ(r.files[0].count, 3);
  EXPECT_TRUE(Scan("^$", "a\n\nb\n").files.size() == 1);
  EXPECT_TRUE(Scan("x", "").files.empty());
  EXPECT_TRUE(Scan("x", "abc\n").files.empty());
}

TEST(GrepTest, Modes) {
  GrepOptions count;
  count.mode = GrepMode::kCount;
  GrepResult r = Scan("a", "a\nb\na\na\n", count);
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].count, 3);
  EXPECT_TRUE(r.files[0].lines.empty());
  GrepOptions files;
  files.mode = GrepMode::kFilesWithMatches;
  r = Scan("a", "a\nb\na\na\n", files);
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].count, 1);
  EXPECT_EQ(r.files[0].path, "/f");
}

TEST(GrepTest, BinaryFilesReportNoLines) {
  GrepResult r = Scan("hit", std::string("hit\0\nhit\n", 9));
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_TRUE(r.files[0].binary);
  EXPECT_EQ(r.files[0].count, 2);
  EXPECT_TRUE(r.files[0].lines.empty());
  EXPECT_FALSE(LooksBinary("plain text"));
  EXPECT_TRUE(LooksBinary(std::string("a\0b", 3)));
  EXPECT_FALSE(LooksBinary(std::string(9000, 'a') + std::string(1, '\0')));  // only the first 8 KiB
}

TEST(GrepTest, LongLinesAreCutAtACharacterBoundary) {
  GrepOptions opt;
  opt.max_line_bytes = 4;
  GrepResult r = Scan("a", "aaż\n", opt);  // 'ż' is 2 bytes: bytes 2..3
  ASSERT_EQ(r.files[0].lines.size(), 1u);
  EXPECT_EQ(r.files[0].lines[0].text, "aaż");
  EXPECT_FALSE(r.files[0].lines[0].text_truncated);
  opt.max_line_bytes = 3;
  r = Scan("a", "aaż\n", opt);
  EXPECT_EQ(r.files[0].lines[0].text, "aa");
  EXPECT_TRUE(r.files[0].lines[0].text_truncated);
}

TEST(GrepTest, CapsStopTheSearchAndSayWhy) {
  GrepOptions opt;
  opt.max_lines = 2;
  bool more = true;
  GrepResult r = Scan("x", "x\nx\nx\n", opt, &more);
  EXPECT_FALSE(more);
  EXPECT_TRUE(r.truncated);
  EXPECT_NE(r.truncated_reason.find("more than 2 matching lines"), std::string::npos);
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].lines.size(), 2u);

  GrepOptions tiny;
  tiny.max_steps = 50;
  r = Scan("(a|b)*c", std::string(1000, 'a'), tiny, &more);
  EXPECT_FALSE(more);
  EXPECT_TRUE(r.truncated);
  EXPECT_NE(r.truncated_reason.find("work budget"), std::string::npos);
}

}  // namespace
}  // namespace brig::files
