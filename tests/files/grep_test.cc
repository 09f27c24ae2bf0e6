// grep: the pattern syntax (GrepPattern, on RE2: what it accepts, what it refuses and why,
// agreement with std::regex on patterns both read alike), and GrepContent on one file's
// bytes (line splitting and numbering, modes, binary files, the bounds).
#include <regex>

#include <gtest/gtest.h>

#include "files/grep.h"

namespace brig::files {
namespace {

bool Matches(const std::string& pattern, const std::string& line, bool ci = false) {
  StatusOr<GrepPattern> re = GrepPattern::Compile(pattern, ci);
  EXPECT_TRUE(re.ok()) << pattern << ": " << re.status().ToString();
  return re.ok() && re.value().Matches(line);
}

Status CompileError(const std::string& pattern) { return GrepPattern::Compile(pattern).status(); }

TEST(GrepPatternTest, Basics) {
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
  EXPECT_TRUE(Matches("(?P<pet>cat|dog)s", "cats"));
  EXPECT_TRUE(Matches("a{3}", "baaab"));
  EXPECT_FALSE(Matches("^a{3}$", "aa"));
  EXPECT_TRUE(Matches("^a{2,}$", "aaaa"));
  EXPECT_TRUE(Matches("^a{2,3}$", "aaa"));
  EXPECT_FALSE(Matches("^a{2,3}$", "aaaa"));
  EXPECT_TRUE(Matches("^a{0}b$", "b"));
  EXPECT_TRUE(Matches("a*?b", "aab"));     // lazy finds the same lines
  EXPECT_TRUE(Matches("x{,2}", "x{,2}"));  // not a count: literal
  EXPECT_TRUE(Matches("a{", "a{"));
  EXPECT_TRUE(Matches(R"(\Qa.b*\E$)", "xa.b*"));  // quoted text
  EXPECT_FALSE(Matches(R"(\Qa.b\E)", "axb"));
}

TEST(GrepPatternTest, MatchesStartingLateInTheLine) {
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

TEST(GrepPatternTest, ClassesAndEscapes) {
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
  EXPECT_TRUE(Matches(R"(^\pL+$)", "żółw"));
  EXPECT_TRUE(Matches(R"(\p{Greek})", "a σ b"));
  EXPECT_TRUE(Matches(R"(\bword\b)", "a word here"));
  EXPECT_FALSE(Matches(R"(\bword\b)", "swordfish"));
  EXPECT_TRUE(Matches(R"(\Bord)", "sword"));
  EXPECT_TRUE(Matches(R"(a\.b)", "a.b"));
  EXPECT_FALSE(Matches(R"(a\.b)", "axb"));
  EXPECT_TRUE(Matches(R"(\(x\))", "f(x)"));
  EXPECT_TRUE(Matches(R"(\x41\x{42}\x{1F600})", "AB😀"));
  EXPECT_TRUE(Matches(R"(\t)", "a\tb"));
  EXPECT_TRUE(Matches(R"(\/path)", "/path"));
  EXPECT_TRUE(Matches(R"(\0)", std::string("a\0b", 3)));
}

TEST(GrepPatternTest, Utf8AndCaseFolding) {
  EXPECT_TRUE(Matches("^.$", "ż"));  // one code point, two bytes
  EXPECT_TRUE(Matches("^..$", "日本"));
  EXPECT_TRUE(Matches("^[a-ż]+$", "żółw"));
  EXPECT_FALSE(Matches("^[ą-ż]+$", "żółw"));  // ó (U+00F3) is below ą (U+0105)
  EXPECT_TRUE(Matches("🐢", "a 🐢 b"));
  EXPECT_TRUE(Matches("hello", "HeLLo", true));
  EXPECT_TRUE(Matches("(?i)hello", "HeLLo"));
  EXPECT_TRUE(Matches("[a-c]+x", "ABCX", true));
  EXPECT_TRUE(Matches("ŻÓŁW", "żółw", true));
  EXPECT_TRUE(Matches("привет", "ПРИВЕТ", true));
  EXPECT_TRUE(Matches("σ", "Σ", true));
  EXPECT_TRUE(Matches("ǆ", "ǅ", true));  // beyond the scripts the old engine folded
  EXPECT_FALSE(Matches("hello", "HELLO"));
  // A byte that is not valid UTF-8 is matched only by \C, never by "." or a class.
  EXPECT_FALSE(Matches("^a.b$", "a\xff" "b"));
  EXPECT_FALSE(Matches("^a[^x]b$", "a\xff" "b"));
  EXPECT_TRUE(Matches(R"(^a\Cb$)", "a\xff" "b"));
}

TEST(GrepPatternTest, RefusedPatternsSayWhy) {
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
                                         {"(?=a)", "lookahead and lookbehind"},
                                         {"(?<!a)b", "lookahead and lookbehind"},
                                         {"(?<n>a)", "(?P<name>...)"},
                                         {"a\\", "trailing backslash"},
                                         {R"(\q)", "unknown escape \\q"},
                                         {R"(\u00e9)", "\\x{HHHH}"},
                                         {R"(a\Z)", "\\z or $"},
                                         {"[z-a]", "z-a"},
                                         {"a{1001}", "at most 1000"},
                                         {"a{3,2}", "min <= max"},
                                         {"(a{1000}){1000}", "nested counts multiplied"},
                                         {R"(\xZZ)", "unknown escape"},
                                         {"[[:nope:]]", "[:nope:]"},
                                         {R"(\pL{1000})", "too large"},
                                         {"\xff", "UTF-8"}}) {
    Status s = CompileError(c.pattern);
    ASSERT_TRUE(s.IsInvalidArgument()) << c.pattern;
    EXPECT_NE(s.message().find(c.why), std::string::npos) << c.pattern << ": " << s.message();
  }
  EXPECT_TRUE(CompileError(std::string(GrepPattern::kMaxPatternBytes + 1, 'a')).IsInvalidArgument());
  EXPECT_TRUE(CompileError(std::string(GrepPattern::kMaxPatternBytes, 'a')).ok());
  // Nesting is bounded only by the length: RE2 parses without recursion.
  const size_t deepest = GrepPattern::kMaxPatternBytes / 2 - 1;
  EXPECT_TRUE(CompileError(std::string(deepest, '(') + "a" + std::string(deepest, ')')).ok());
}

TEST(GrepPatternTest, PathologicalPatternsRunInLinearTime) {
  // Exponential for a backtracking engine: on 200,000 characters these would never end.
  const std::string line(200'000, 'a');
  for (const char* p : {"(a+)+$x", "(a|aa)*b", "(a*)*b", "^(a|a?)+$x", "(.*a){20}x", "(x+x+)+y"}) {
    StatusOr<GrepPattern> re = GrepPattern::Compile(p);
    ASSERT_TRUE(re.ok()) << p;
    EXPECT_FALSE(re.value().Matches(line)) << p;
  }
}

TEST(GrepPatternTest, AgreesWithStdRegexOnSharedSyntax) {
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
    const std::regex ref_ci(p, std::regex::ECMAScript | std::regex::icase);
    for (const std::string& l : lines) {
      EXPECT_EQ(Matches(p, l), std::regex_search(l, ref)) << "pattern " << p << " line '" << l << "'";
      std::string upper = l;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      EXPECT_EQ(Matches(p, upper, true), std::regex_search(upper, ref_ci)) << "ci pattern " << p << " line '" << upper << "'";
    }
  }
}

GrepResult Scan(const std::string& pattern, const std::string& content, GrepOptions opt = {}, bool* more = nullptr) {
  StatusOr<GrepPattern> re = GrepPattern::Compile(pattern, opt.case_insensitive);
  EXPECT_TRUE(re.ok());
  GrepResult r;
  GrepBudget budget(opt);
  const bool keep_going = GrepContent(re.value(), "/f", content, opt, &budget, &r);
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
  EXPECT_TRUE(Scan("a.b", "a\nb\n").files.empty());  // a match never spans lines
  EXPECT_TRUE(Scan(R"(a\sb)", "a\nb\n").files.empty());
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

  // A search whose time is up stops before its next line (the clock is read at the first).
  GrepOptions no_time;
  no_time.max_time = std::chrono::milliseconds(0);
  r = Scan("a", "a\na\n", no_time, &more);
  EXPECT_FALSE(more);
  EXPECT_TRUE(r.truncated);
  EXPECT_NE(r.truncated_reason.find("ran out of time"), std::string::npos);
  EXPECT_NE(r.truncated_reason.find("/f at line 1"), std::string::npos);
  EXPECT_TRUE(r.files.empty());
}

TEST(GrepTest, ALineTooLongForThePatternStopsTheSearch) {
  StatusOr<GrepPattern> re = GrepPattern::Compile("a.{99}z");
  ASSERT_TRUE(re.ok());
  const int64_t size = re.value().program_size();
  ASSERT_GT(size, 100);  // the count is expanded
  GrepOptions opt;
  opt.max_line_work = 1000 * size;  // lines of up to 999 bytes
  std::string fits(999, '-');  // "a", 99 characters, "z", padding
  fits[0] = 'a';
  fits[100] = 'z';
  const std::string too_long = fits + "-";
  GrepResult r;
  GrepBudget budget(opt);
  EXPECT_TRUE(GrepContent(re.value(), "/f", fits + "\n" + fits, opt, &budget, &r));
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].count, 2);
  EXPECT_FALSE(r.truncated);

  r = GrepResult{};
  EXPECT_FALSE(GrepContent(re.value(), "/g", fits + "\n" + too_long + "\n" + fits, opt, &budget, &r));
  EXPECT_TRUE(r.truncated);
  EXPECT_NE(r.truncated_reason.find("/g at line 2 is 1000 bytes long"), std::string::npos) << r.truncated_reason;
  EXPECT_NE(r.truncated_reason.find("(999 bytes)"), std::string::npos) << r.truncated_reason;
  ASSERT_EQ(r.files.size(), 1u);  // what was found before is kept
  EXPECT_EQ(r.files[0].count, 1);
}

}  // namespace
}  // namespace brig::files
