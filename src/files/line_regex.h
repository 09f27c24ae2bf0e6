// brig::files::LineRegex: the regular expressions of `grep`, matched in time linear in the
// input. Patterns come from agents and run over files of up to 20 MiB, so std::regex is
// out: it backtracks (exponential time on "(a+)+$") and recurses per character (a long line
// overflows the host's stack). This is a Thompson NFA run as a Pike VM without captures:
// grep only asks whether a line matches, which needs no backtracking, and every search
// costs at most (input code points) x (program size) steps, counted against a budget.
//
// Syntax (ECMAScript's, minus what needs backtracking):
//   literals; "." (any character); [abc] [a-z] [^...] with \d \w \s and [:alpha:]-style
//   classes inside (a "]" right after "[" or "[^" is literal); \d \D \w \W \s \S; \b \B; ^ $ (start and end of the line);
//   (...) and (?:...); a|b; * + ? {n} {n,} {n,m} (m <= 1000), each optionally lazy ("*?",
//   which finds the same lines); escapes \t \n \r \f \v \0 \xHH \uHHHH \u{H...} and a
//   backslash before any punctuation. A "{" that does not start a valid count is a literal.
// Refused with InvalidArgument (saying why): back-references, lookaround, named groups,
// unbalanced parentheses or brackets, a quantifier with nothing to repeat, counts over
// 1000 or patterns whose program would exceed kMaxProgramSize, nesting deeper than 256.
//
// Text is UTF-8; "." and classes match one code point. A byte that is not part of valid
// UTF-8 matches only "." and negated classes. Case-insensitive matching folds ASCII,
// Latin-1, Latin Extended-A, Greek and Cyrillic letters.
//
// Thread-safety: Search keeps scratch space in the object; use one LineRegex per thread
// (copying is cheap next to a search).
#ifndef BRIG_FILES_LINE_REGEX_H_
#define BRIG_FILES_LINE_REGEX_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "brig/status.h"

namespace brig::files {

class LineRegex {
 public:
  static constexpr size_t kMaxPatternBytes = 4096;
  static constexpr size_t kMaxProgramSize = 20'000;  // NFA instructions
  static constexpr int kMaxRepeat = 1000;
  static constexpr int kMaxNesting = 256;

  enum class Outcome { kNoMatch, kMatch, kOutOfBudget };

  // InvalidArgument for a pattern outside the syntax above.
  static StatusOr<LineRegex> Compile(std::string_view pattern, bool case_insensitive = false);

  // Whether some part of `line` matches. Each step (an NFA state advanced over one code
  // point) takes one from *budget; if it runs out, returns kOutOfBudget. `line` is one
  // line: "^" and "$" match only at its ends.
  Outcome Search(std::string_view line, int64_t* budget) const;

 private:
  enum class Op : uint8_t { kChar, kAny, kClass, kSplit, kJmp, kBol, kEol, kWordBoundary, kNotWordBoundary, kMatch };
  struct Inst {
    Op op;
    char32_t c = 0;  // kChar
    int32_t x = 0;   // kSplit / kJmp target; kClass: index into classes_
    int32_t y = 0;   // kSplit second target
  };
  struct CharClass {
    std::vector<std::pair<char32_t, char32_t>> ranges;
    bool negated = false;
  };
  friend class RegexCompiler;

  bool ClassMatches(const CharClass& cls, char32_t c) const;
  bool StepMatches(const Inst& inst, char32_t c) const;
  // Adds `pc` and what it reaches without consuming input to `list`; sets *matched on kMatch.
  void AddThread(std::vector<int32_t>& list, int32_t pc, size_t pos, std::string_view line, bool* matched) const;

  std::vector<Inst> program_;
  std::vector<CharClass> classes_;
  bool case_insensitive_ = false;
  // Set when the whole pattern is a plain string (no metacharacters, case-sensitive):
  // searched with string_view::find.
  bool literal_only_ = false;
  std::string literal_;
  // When every match must begin with one of a few known bytes: first_bytes_[b] says whether
  // a match can start at a byte b, so Search skips other positions while no thread is alive.
  bool use_first_bytes_ = false;
  std::array<bool, 256> first_bytes_{};

  // Scratch for Search.
  mutable std::vector<int32_t> clist_, nlist_, stack_;
  mutable std::vector<uint32_t> mark_;
  mutable uint32_t generation_ = 0;
};

// Simple case folding of one code point (see above), to lower case.
char32_t FoldLower(char32_t c);
char32_t FoldUpper(char32_t c);

}  // namespace brig::files

#endif  // BRIG_FILES_LINE_REGEX_H_
