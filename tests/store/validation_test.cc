#include "store/validation.h"

#include <gtest/gtest.h>

namespace brig::store {
namespace {

TEST(ValidateThreadId, AcceptsOrdinaryIdsUpTo255Bytes) {
  for (const std::string id : {"a", "thread-1", "user@example.com/chat 7", "\xc3\xa9t\xc3\xa9",
                                "\xf0\x9f\x90\x8d", "a/b\\c:d"}) {
    EXPECT_TRUE(ValidateThreadId(id).ok()) << id;
  }
  EXPECT_TRUE(ValidateThreadId(std::string(255, 'x')).ok());
  // 255 bytes counted in bytes, not characters: 127 two-byte characters + 1 byte fit.
  std::string multi;
  for (int i = 0; i < 127; ++i) multi += "\xc3\xa9";
  EXPECT_TRUE(ValidateThreadId(multi + "x").ok());
  EXPECT_FALSE(ValidateThreadId(multi + "\xc3\xa9").ok());
}

TEST(ValidateThreadId, RefusesEmptyLongControlAndMalformed) {
  EXPECT_NE(ValidateThreadId("").message().find("empty"), std::string::npos);
  EXPECT_NE(ValidateThreadId(std::string(256, 'x')).message().find("255"), std::string::npos);
  EXPECT_NE(ValidateThreadId(std::string("a\0b", 3)).message().find("NUL"), std::string::npos);
  for (const std::string id : {"a\tb", "a\nb", "\x1b[31m", "a\x7f", "a\xc2\x9f", "\xff", "\xc3", "\xed\xa0\x80",
                                "\xf4\x90\x80\x80", "\xe0\x80\xaf"}) {
    Status s = ValidateThreadId(id);
    EXPECT_TRUE(s.IsInvalidArgument()) << ::testing::PrintToString(id);
  }
}

TEST(ValidateFilePath, AcceptsAbsoluteNormalPaths) {
  for (const std::string p : {"/a", "/home/user/out/report.md", "/tmp/data.csv", "/a b/c-d_e.f~",
                               "/\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac.txt", "/...", "/a/.hidden", "/a..b"}) {
    EXPECT_TRUE(ValidateFilePath(p).ok()) << p << ": " << ValidateFilePath(p).message();
  }
  std::string deep;
  for (size_t i = 0; i < kMaxPathDepth; ++i) deep += "/d";
  EXPECT_TRUE(ValidateFilePath(deep).ok());
  EXPECT_FALSE(ValidateFilePath(deep + "/d").ok());
  std::string longest;
  while (longest.size() + 256 < kMaxPathBytes) longest += "/" + std::string(255, 'x');
  longest += "/" + std::string(kMaxPathBytes - longest.size() - 1, 'y');
  EXPECT_TRUE(ValidateFilePath(longest).ok());
  EXPECT_FALSE(ValidateFilePath(longest + "x").ok());
}

TEST(ValidateFilePath, AcceptsWhatAgentsWrite) {
  // Characters other systems refuse are ordinary here: the guest can make these names, so the
  // store must hold them (names/path_rules.h).
  for (const std::string p : {"/tmp/12:00.log", "/home/user/report: final.txt", "/a<b>", "/\"q\"", "/a|b",
                               "/what?", "/*", "/a\\b"}) {
    EXPECT_TRUE(ValidateFilePath(p).ok()) << p << ": " << ValidateFilePath(p).message();
  }
  EXPECT_TRUE(ValidateFilePath("/tmp/" + std::string(255, 'a')).ok());
}

TEST(ValidateFilePath, RefusesEachRule) {
  const std::pair<std::string, const char*> cases[] = {
      {"", "empty"},           {"a/b", "absolute"},      {"/", "root"},       {"/a//b", "empty"},
      {"/a/", "empty"},        {"/a/../b", "'..'"},      {"/..", "'..'"},     {"/./a", "'.'"},
      {"/a/.", "'.'"},         {std::string("/a\0", 3), "control"}, {"/a\r", "control"},
      {"/a\x1b[31m", "control"}, {"/a\xc2\x85", "control"}, {"/\xff", "UTF-8"}, {"/\xed\xa0\x80", "UTF-8"},
      {"/tmp/" + std::string(256, 'a'), "255"},
  };
  for (const auto& [path, why] : cases) {
    Status s = ValidateFilePath(path);
    EXPECT_TRUE(s.IsInvalidArgument()) << ::testing::PrintToString(path);
    EXPECT_NE(s.message().find(why), std::string::npos) << ::testing::PrintToString(path) << ": " << s.message();
  }
}

TEST(ValidateFileSize, LimitIsTwentyMiB) {
  EXPECT_EQ(kMaxFileBytes, 20 * 1024 * 1024);
  EXPECT_TRUE(ValidateFileSize("/f", 0).ok());
  EXPECT_TRUE(ValidateFileSize("/f", kMaxFileBytes).ok());
  Status s = ValidateFileSize("/f", kMaxFileBytes + 1);
  EXPECT_TRUE(s.IsResourceExhausted());
  EXPECT_NE(s.message().find("/f"), std::string::npos);
  EXPECT_TRUE(ValidateFileSize("/f", -1).IsInvalidArgument());
}

}  // namespace
}  // namespace brig::store
