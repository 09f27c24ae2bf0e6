// LineRegex: syntax, refusals, linear time, and agreement with std::regex (ECMAScript) on
// patterns std::regex can run safely.
#include <chrono>
#include <regex>

#include <gtest/gtest.h>

#include "files/line_regex.h"

namespace brig::files {
namespace {

bool Matches(const std::string& pattern, const std::string& line, bool ci = false) {
  StatusOr<LineRegex> re = LineRegex::Compile(pattern, ci);
  EXPECT_TRUE(re.ok()) << pattern << ": " << re.status().ToString();
  if (!re.ok()) return false;
  int64_t budget = 1'000'000'000;
  LineRegex::Outcome o = re.value().Search(line, &budget);
  EXPECT_NE(o, LineRegex::Outcome::kOutOfBudget);
  return o == LineRegex::Outcome::kMatch;
}

Status CompileError(const std::string& pattern) { return LineRegex::Compile(pattern).status(); }

TEST(LineRegexTest, Basics) {
  EXPECT_TRUE(Matches("abc", "xxabcxx"));
  EXPECT_FALSE(Matches("abc", "ab c"));
  EXPECT_TRUE(Matches("", "anything"));
  EXPECT_TRUE(Matches("", ""));
  EXPECT_TRUE(Matches("^abc$", "abc"));
  EXPECT_FALSE(Matches("^abc$", "abcd"));
  EXPECT_FALSE(Matches("^abc", "xabc"));
  EXPECT_TRUE(Matches("c$", "abc"));
  EXPECT_TRUE(Matches("a.c", "abc"));
  EXPECT_FALSE(Matches("a.c", "ac"));
  EXPECT_TRUE(Matches("colou?r", "color"));
  EXPECT_TRUE(Matches("colou?r", "colour"));
  EXPECT_TRUE(Matches("ab*c", "ac"));
  EXPECT_TRUE(Matches("ab+c", "abbbc"));
  EXPECT_FALSE(Matches("ab+c", "ac"));
  EXPECT_TRUE(Matches("(cat|dog)s", "hotdogs"));
  EXPECT_FALSE(Matches("(cat|dog)s", "cow"));
  EXPECT_TRUE(Matches("(?:ab)+$", "xababab"));
  EXPECT_TRUE(Matches("a{3}", "baaab"));
  EXPECT_FALSE(Matches("^a{3}$", "aa"));
  EXPECT_TRUE(Matches("^a{2,}$", "aaaa"));
  EXPECT_TRUE(Matches("^a{2,3}$", "aaa"));
  EXPECT_FALSE(Matches("^a{2,3}$", "aaaa"));
  EXPECT_TRUE(Matches("^a{0}b$", "b"));
  EXPECT_TRUE(Matches("a*?b", "aab"));  // lazy finds the same lines
  EXPECT_TRUE(Matches("x{,2}", "x{,2}"));  // not a count: literal
  EXPECT_TRUE(Matches("a{", "a{"));
}

TEST(LineRegexTest, MatchesStartingLateInTheLine) {
  // Patterns whose matches begin with known bytes skip ahead; the result must not change.
  const std::string pad(1000, '.');
  EXPECT_TRUE(Matches("foo|bar", pad + "bar"));
  EXPECT_FALSE(Matches("foo|bar", pad + "ba"));
  EXPECT_TRUE(Matches("(ab)*c", pad + "ababc"));
  EXPECT_TRUE(Matches("\\bword\\b", pad + " word"));
  EXPECT_FALSE(Matches("\\bword", pad + "sword"));
  EXPECT_FALSE(Matches("^foo", pad + "foo"));
  EXPECT_TRUE(Matches("foo$", pad + "foo"));
  EXPECT_TRUE(Matches("fOo|Bar", pad + "BAR", true));
  EXPECT_TRUE(Matches("żółw", pad + "żółw"));
  EXPECT_TRUE(Matches("ŻÓŁW", pad + "żółw", true));
  EXPECT_TRUE(Matches("a+b", pad + "aaab"));
  EXPECT_TRUE(Matches("x?y", pad + "y"));
  EXPECT_TRUE(Matches("(a|b)c", "\xff\xe2" + pad + "bc"));  // invalid UTF-8 before
  EXPECT_TRUE(Matches("€", "\xe2\xe2\x82\xac"));
}

TEST(LineRegexTest, ClassesAndEscapes) {
  EXPECT_TRUE(Matches("[abc]", "xbx"));
  EXPECT_FALSE(Matches("[abc]", "xyz"));
  EXPECT_TRUE(Matches("^[a-z]+$", "hello"));
  EXPECT_FALSE(Matches("^[a-z]+$", "Hello"));
  EXPECT_TRUE(Matches("^[^0-9]+$", "abc"));
  EXPECT_FALSE(Matches("^[^0-9]+$", "ab1"));
  EXPECT_TRUE(Matches("[]a]", "]"));
  EXPECT_TRUE(Matches("[a-]", "-"));
  EXPECT_TRUE(Matches(R"([\]])", "]"));
  EXPECT_TRUE(Matches(R"(^\d+$)", "2024"));
  EXPECT_FALSE(Matches(R"(\d)", "abc"));
  EXPECT_TRUE(Matches(R"(^\D+$)", "abc"));
  EXPECT_TRUE(Matches(R"(^\w+$)", "snake_case9"));
  EXPECT_FALSE(Matches(R"(^\w+$)", "a-b"));
  EXPECT_TRUE(Matches(R"(a\sb)", "a\tb"));
  EXPECT_TRUE(Matches(R"(^\S+$)", "abc"));
  EXPECT_TRUE(Matches(R"([\d_]+)", "_1"));
  EXPECT_TRUE(Matches(R"(^[[:alpha:]]+[[:digit:]]$)", "abc1"));
  EXPECT_TRUE(Matches(R"(\bword\b)", "a word here"));
  EXPECT_FALSE(Matches(R"(\bword\b)", "swordfish"));
  EXPECT_TRUE(Matches(R"(\Bord)", "sword"));
  EXPECT_TRUE(Matches(R"(a\.b)", "a.b"));
  EXPECT_FALSE(Matches(R"(a\.b)", "axb"));
  EXPECT_TRUE(Matches(R"(\(x\))", "f(x)"));
  EXPECT_TRUE(Matches(R"(\x41\u0042\u{43})", "ABC"));
  EXPECT_TRUE(Matches(R"(\t)", "a\tb"));
  EXPECT_TRUE(Matches(R"(\/path)", "/path"));
}

TEST(LineRegexTest, Utf8AndCaseFolding) {
  EXPECT_TRUE(Matches("^.$", "ż"));             // one code point, two bytes
  EXPECT_TRUE(Matches("^..$", "日本"));
  EXPECT_TRUE(Matches("^[a-ż]+$", "żółw"));
  EXPECT_FALSE(Matches("^[ą-ż]+$", "żółw"));  // ó (U+00F3) is below ą (U+0105)
  EXPECT_TRUE(Matches("🐢", "a 🐢 b"));
  EXPECT_TRUE(Matches("hello", "HeLLo", true));
  EXPECT_TRUE(Matches("[a-c]+x", "ABCX", true));
  EXPECT_TRUE(Matches("ŻÓŁW", "żółw", true));
  EXPECT_TRUE(Matches("привет", "ПРИВЕТ", true));
  EXPECT_TRUE(Matches("σ", "Σ", true));
  EXPECT_FALSE(Matches("hello", "HELLO"));
  // Invalid UTF-8 in the text: matched by "." and negated classes only.
  EXPECT_TRUE(Matches("^a.b$", "a\xff" "b"));
  EXPECT_TRUE(Matches("^a[^x]b$", "a\xff" "b"));
  EXPECT_FALSE(Matches("^a[\\x00-\\u{10FFFF}]b$", "a\xff" "b"));
}

TEST(LineRegexTest, RefusedPatternsSayWhy) {
  struct Case {
    const char* pattern;
    const char* why;
  };
  for (const Case& c : std::vector<Case>{{"(ab", "missing ')'"},
                                         {"ab)", "unmatched ')'"},
                                         {"[ab", "missing ']'"},
                                         {"*a", "nothing to repeat"},
                                         {"a**", "nothing to repeat"},
                                         {"a{2}{3}", "nothing to repeat"},
                                         {"{3}", "nothing to repeat"},
                                         {R"((a)\1)", "back-references"},
                                         {"(?=a)", "lookaround"},
                                         {"(?<n>a)", "lookaround"},
                                         {"a\\", "trailing backslash"},
                                         {R"(\q)", "unknown escape"},
                                         {"[z-a]", "out of order"},
                                         {"a{1001}", "over 1000"},
                                         {"a{3,2}", "max < min"},
                                         {"(a{1000}){1000}", "too large"},
                                         {R"(\xZZ)", "hexadecimal"},
                                         {"[[:nope:]]", "[:nope:]"}}) {
    Status s = CompileError(c.pattern);
    ASSERT_TRUE(s.IsInvalidArgument()) << c.pattern;
    EXPECT_NE(s.message().find(c.why), std::string::npos) << c.pattern << ": " << s.message();
  }
  EXPECT_TRUE(CompileError(std::string(LineRegex::kMaxPatternBytes + 1, 'a')).IsInvalidArgument());
  EXPECT_TRUE(CompileError("\xff").IsInvalidArgument());
  EXPECT_TRUE(CompileError(std::string(300, '(') + std::string(300, ')')).IsInvalidArgument());
  EXPECT_TRUE(CompileError(std::string(200, '(') + "a" + std::string(200, ')')).ok());
}

TEST(LineRegexTest, PathologicalPatternsRunInLinearTime) {
  const std::string line(200'000, 'a');
  for (const char* p : {"(a+)+$x", "(a|aa)*b", "(a*)*b", "^(a|a?)+$x", "(.*a){20}x", "(x+x+)+y"}) {
    StatusOr<LineRegex> re = LineRegex::Compile(p);
    ASSERT_TRUE(re.ok()) << p;
    int64_t budget = int64_t{1} << 40;
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(re.value().Search(line, &budget), LineRegex::Outcome::kNoMatch) << p;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_LT(secs, 5.0) << p;
  }
}

TEST(LineRegexTest, BudgetIsEnforced) {
  StatusOr<LineRegex> re = LineRegex::Compile("(a|b)*c");
  ASSERT_TRUE(re.ok());
  int64_t budget = 100;
  EXPECT_EQ(re.value().Search(std::string(10'000, 'a'), &budget), LineRegex::Outcome::kOutOfBudget);
  budget = 1'000'000;
  EXPECT_EQ(re.value().Search(std::string(10'000, 'a'), &budget), LineRegex::Outcome::kNoMatch);
  EXPECT_GT(budget, 0);
  EXPECT_LT(budget, 1'000'000);  // work was charged
}

TEST(LineRegexTest, AgreesWithStdRegexOnSafePatterns) {
  const std::vector<std::string> patterns = {
      "a",         "ab|cd",      "^a",         "b$",          "a.c",        "a*",        "a+b",     "(ab)*c",
      "[a-c]+",    "[^a-c]",     "a{2}",       "a{1,2}b",     "(a|b)c",     "\\bab",     "ab\\b",   "\\d+",
      "^$",        "x?y",        "(a|)b",      "^(ab|a)b$",   "[ab]{2,}$",  "\\w\\s\\w", "c(a|b)*", "\\Ba",
      "^(a*)*$",   "(?:a|b)+c$", "[.]",        "a|b|c|d",     "^.{3}$",     "b*?c",      "a\\.",    "[-a]",
  };
  const std::vector<std::string> lines = {"",     "a",   "b",    "ab",   "abc",    "cab",     "aab",  "abab",
                                          "a.c",  "ac",  "1234", "a b",  "xyz",    "aaaa",    "bbbc", "abcd",
                                          "a-b",  "cd",  "ba",   "b a",  "aaab",   "abababc", "x y",  ".",
                                          "ab c", "yxy", "_ab_", "a\tb", "abc123", "-"};
  for (const std::string& p : patterns) {
    const std::regex ref(p, std::regex::ECMAScript);
    for (const std::string& l : lines) {
      EXPECT_EQ(Matches(p, l), std::regex_search(l, ref)) << "pattern " << p << " line '" << l << "'";
      const std::regex ref_ci(p, std::regex::ECMAScript | std::regex::icase);
      std::string upper = l;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      EXPECT_EQ(Matches(p, upper, true), std::regex_search(upper, ref_ci)) << "ci pattern " << p << " line '" << upper << "'";
    }
  }
}

}  // namespace
}  // namespace brig::files
