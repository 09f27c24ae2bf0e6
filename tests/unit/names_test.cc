// The one set of name rules (names/path_rules.h) and the one UTF-8 codec (names/utf8.h).
#include <gtest/gtest.h>

#include <string>

#include "names/path_rules.h"
#include "names/utf8.h"

namespace brig::names {
namespace {

TEST(Utf8, IsValid) {
  EXPECT_TRUE(utf8::IsValid(""));
  EXPECT_TRUE(utf8::IsValid("ascii"));
  EXPECT_TRUE(utf8::IsValid("\xf0\x9f\x90\x8d"));
  EXPECT_TRUE(utf8::IsValid("\xf4\x8f\xbf\xbf"));   // U+10FFFF
  EXPECT_FALSE(utf8::IsValid("\xf0\x9f\x90"));      // truncated
  EXPECT_FALSE(utf8::IsValid("\xc1\xbf"));          // overlong
  EXPECT_FALSE(utf8::IsValid("\xe0\x80\xaf"));      // overlong, 3 bytes
  EXPECT_FALSE(utf8::IsValid("\xed\xbf\xbf"));      // surrogate
  EXPECT_FALSE(utf8::IsValid("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(utf8::IsValid("\x80"));              // lone continuation
}

TEST(Utf8, DecodeAppendRoundTripEveryScalar) {
  for (char32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x3000 ? 1 : 97)) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    utf8::Append(&s, cp);
    size_t pos = 0;
    ASSERT_EQ(utf8::Decode(s, &pos), cp);
    ASSERT_EQ(pos, s.size());
  }
}

TEST(Utf8, DecodeIsTotal) {
  const std::string bad = "\xff\xc3";
  size_t pos = 0;
  EXPECT_EQ(utf8::Decode(bad, &pos), utf8::kInvalidByteBase + 0xff);
  EXPECT_EQ(pos, 1u);
  EXPECT_EQ(utf8::Decode(bad, &pos), utf8::kInvalidByteBase + 0xc3);
  EXPECT_EQ(pos, 2u);
}

TEST(CheckName, EachFault) {
  EXPECT_EQ(CheckName("12:00.log"), NameFault::kNone);
  EXPECT_EQ(CheckName("report: final?.txt"), NameFault::kNone);
  EXPECT_EQ(CheckName(std::string(255, 'a')), NameFault::kNone);
  EXPECT_EQ(CheckName(""), NameFault::kEmpty);
  EXPECT_EQ(CheckName("."), NameFault::kDot);
  EXPECT_EQ(CheckName(".."), NameFault::kDot);
  EXPECT_EQ(CheckName("..."), NameFault::kNone);
  EXPECT_EQ(CheckName(std::string(256, 'a')), NameFault::kTooLong);
  EXPECT_EQ(CheckName("a\xff"), NameFault::kNotUtf8);
  EXPECT_EQ(CheckName(std::string("a\0", 2)), NameFault::kControl);
  EXPECT_EQ(CheckName("a\nb"), NameFault::kControl);
  EXPECT_EQ(CheckName("a\x7f"), NameFault::kControl);
  EXPECT_EQ(CheckName("a\xc2\x9b"), NameFault::kControl);  // U+009B, CSI
  EXPECT_EQ(CheckName("\xc2\xa0"), NameFault::kNone);      // U+00A0 is not a control
}

TEST(CheckPath, LengthAndDepth) {
  std::string deep;
  for (size_t i = 0; i < kMaxDepth; ++i) deep += "/d";
  EXPECT_EQ(CheckPath(deep), nullptr);
  EXPECT_NE(CheckPath(deep + "/d"), nullptr);
  std::string longest;
  while (longest.size() + 256 < kMaxPathBytes) longest += "/" + std::string(255, 'x');
  longest += "/" + std::string(kMaxPathBytes - longest.size() - 1, 'y');
  ASSERT_EQ(longest.size(), kMaxPathBytes);
  EXPECT_EQ(CheckPath(longest), nullptr);
  EXPECT_NE(CheckPath(longest + "y"), nullptr);
}

}  // namespace
}  // namespace brig::names
