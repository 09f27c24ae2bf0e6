// GlobPattern: shell-style matching of stored paths, its literal prefix, and refusals.
#include <gtest/gtest.h>

#include "files/glob.h"

namespace brig::files {
namespace {

bool Glob(const std::string& pattern, const std::string& path) {
  StatusOr<GlobPattern> g = GlobPattern::Compile(pattern);
  EXPECT_TRUE(g.ok()) << pattern << ": " << g.status().ToString();
  return g.ok() && g.value().Matches(path);
}

TEST(GlobTest, StarAndQuestionStayInsideOneComponent) {
  EXPECT_TRUE(Glob("/tmp/*.csv", "/tmp/a.csv"));
  EXPECT_TRUE(Glob("/tmp/*.csv", "/tmp/.csv"));
  EXPECT_FALSE(Glob("/tmp/*.csv", "/tmp/sub/a.csv"));
  EXPECT_FALSE(Glob("/tmp/*.csv", "/tmp/a.csvx"));
  EXPECT_TRUE(Glob("/tmp/*", "/tmp/.hidden"));  // unlike a shell
  EXPECT_TRUE(Glob("/*/a", "/tmp/a"));
  EXPECT_FALSE(Glob("/*", "/tmp/a"));
  EXPECT_TRUE(Glob("/tmp/a?c", "/tmp/abc"));
  EXPECT_FALSE(Glob("/tmp/a?c", "/tmp/ac"));
  EXPECT_FALSE(Glob("/tmp?a", "/tmp/a"));
  EXPECT_TRUE(Glob("/tmp/?", "/tmp/ż"));  // one code point
  EXPECT_TRUE(Glob("/tmp/*a*b*c*", "/tmp/xaxxbxxxc"));
  EXPECT_FALSE(Glob("/tmp/*a*b*c*", "/tmp/xaxxcxxxb"));
  EXPECT_TRUE(Glob("/tmp/a**b", "/tmp/axyb"));  // ** inside a component is *
  EXPECT_FALSE(Glob("/tmp/a**b", "/tmp/ax/yb"));
}

TEST(GlobTest, GlobstarSpansDirectories) {
  EXPECT_TRUE(Glob("/a/**/b", "/a/b"));
  EXPECT_TRUE(Glob("/a/**/b", "/a/x/b"));
  EXPECT_TRUE(Glob("/a/**/b", "/a/x/y/z/b"));
  EXPECT_FALSE(Glob("/a/**/b", "/a/x/y/z/c"));
  EXPECT_FALSE(Glob("/a/**/b", "/ab"));
  EXPECT_TRUE(Glob("/**", "/x"));
  EXPECT_TRUE(Glob("/**", "/x/y/z"));
  EXPECT_TRUE(Glob("/**/*.py", "/m.py"));
  EXPECT_TRUE(Glob("/**/*.py", "/home/user/lib/m.py"));
  EXPECT_FALSE(Glob("/**/*.py", "/home/user/lib/m.pyc"));
  EXPECT_TRUE(Glob("/a/**/**/b", "/a/b"));
  EXPECT_TRUE(Glob("/a/**/x/**/b", "/a/1/x/2/3/b"));
  EXPECT_FALSE(Glob("/a/**/x/**/b", "/a/1/y/2/3/b"));
}

TEST(GlobTest, Classes) {
  EXPECT_TRUE(Glob("/f[0-9]", "/f7"));
  EXPECT_FALSE(Glob("/f[0-9]", "/fa"));
  EXPECT_TRUE(Glob("/f[!0-9]", "/fa"));
  EXPECT_TRUE(Glob("/f[^0-9]", "/fa"));
  EXPECT_FALSE(Glob("/f[!0-9]", "/f1"));
  EXPECT_TRUE(Glob("/f[]x]", "/f]"));
  EXPECT_TRUE(Glob("/f[a-cx-z]", "/fy"));
  EXPECT_TRUE(Glob("/f[ą-ż]", "/fł"));
  EXPECT_TRUE(Glob("/f\\[x", "/f[x"));
  EXPECT_FALSE(Glob("/f\\[x", "/fx"));
}

TEST(GlobTest, LiteralPrefix) {
  auto prefix = [](const std::string& p) { return GlobPattern::Compile(p).value().literal_prefix(); };
  EXPECT_EQ(prefix("/home/user/**/*.py"), "/home/user/");
  EXPECT_EQ(prefix("/home/user/*.py"), "/home/user/");
  EXPECT_EQ(prefix("/*/x"), "/");
  EXPECT_EQ(prefix("/**"), "/");
  EXPECT_EQ(prefix("/tmp/a.txt"), "/tmp/a.txt");
  EXPECT_EQ(prefix("/tmp/a\\[1\\].txt"), "/tmp/a[1].txt");
}

TEST(GlobTest, BadPatterns) {
  for (const std::string& p : {std::string(""), std::string("tmp/*"), std::string("/"), std::string("/tmp//x"),
                               std::string("/tmp/"), std::string("/tmp/[ab"), std::string("/tmp/x\\"),
                               std::string("/tmp/[z-a]"), std::string("/tmp/a\nb"), std::string("/\xff"),
                               "/" + std::string(5000, 'a')}) {
    EXPECT_TRUE(GlobPattern::Compile(p).status().IsInvalidArgument()) << p;
  }
}

TEST(GlobTest, ManyStarsOnLongNamesStayFast) {
  StatusOr<GlobPattern> g = GlobPattern::Compile("/" + std::string(100, '*') + "b" + "/**/" + "*a*a*a*a*a*a*a*c");
  ASSERT_TRUE(g.ok());
  std::string path = "/" + std::string(4000, 'a');
  for (int i = 0; i < 30; ++i) path.append("/").append(10, 'a');
  EXPECT_FALSE(g.value().Matches(path));
}

}  // namespace
}  // namespace brig::files
