// Searching stored files' content line by line with a regular expression: the pattern
// (GrepPattern, on RE2), the result types of FileService::Grep and the scan of one file,
// kept free of the store so it is tested alone.
//
// Work is bounded, because patterns and files come from agents. RE2 matches in time linear
// in the text (no backtracking: "(a+)+$" is as cheap as "a"), but the factor can be the
// pattern's program size when its DFA does not fit (measured: ~20 ns per byte and program
// instruction; "a.{999}z" over 1 MiB of "a" took 140 s) and one RE2 call cannot be
// interrupted. So: the pattern's length and compiled memory are capped (GrepPattern), a
// line is searched only if its length times the program size is within
// GrepOptions::max_line_work, the whole search stops at GrepOptions::max_time, the lines
// reported are capped, and so is the text kept of each line. Hitting a bound ends the search
// early with GrepResult::truncated set and the reason; what was found is kept.
#ifndef BRIG_FILES_GREP_H_
#define BRIG_FILES_GREP_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "brig/status.h"

namespace re2 {
class RE2;
}

namespace brig::files {

// A compiled grep pattern: RE2's syntax (https://github.com/google/re2/wiki/Syntax), which
// is Python re's for everything grep needs: literals, ".", [abc] [^a-z] [[:alpha:]],
// \d \w \s \b (ASCII), \pL and \p{Greek} (Unicode classes), groups (...), (?:...) and
// (?P<name>...), a|b, * + ? {n} {n,} {n,m} and their lazy forms, flags such as (?i), escapes
// \t \n \x41 \x{1F600} \. and other punctuation, \Q...\E (literal text). "^" and "$" are the
// start and end of the line. Text and pattern are UTF-8: "." and classes match one code
// point, and a byte that is not valid UTF-8 is matched only by \C (any byte).
// Refused with InvalidArgument, saying why (these need backtracking, or are spelled
// otherwise in RE2): back-references (\1), lookahead and lookbehind ((?=...), (?<=...)),
// (?<name>...) (write (?P<name>...)), \Z (write \z or $), \u (write \x{...}); a count over
// 1000 (nested counts multiply), a pattern longer than kMaxPatternBytes or one whose
// compiled form needs more than kMaxMemoryBytes.
//
// Thread-safety: a compiled pattern is immutable; Matches may be called from any number of
// threads at once.
class GrepPattern {
 public:
  static constexpr size_t kMaxPatternBytes = 4096;
  // RE2's max_mem: its compiled programs and DFA caches, per pattern (RE2's default, which
  // its authors sized after Code Search's limits).
  static constexpr int64_t kMaxMemoryBytes = int64_t{8} << 20;

  // InvalidArgument (the message says why) for a pattern outside the syntax above.
  static StatusOr<GrepPattern> Compile(std::string_view pattern, bool case_insensitive = false);

  // Whether some part of `line` (one line, without its line break) matches.
  bool Matches(std::string_view line) const;

  // The size of the compiled program (RE2's count of instructions): the worst-case cost of
  // matching one byte, in the units of GrepOptions::max_line_work.
  int64_t program_size() const { return program_size_; }

 private:
  explicit GrepPattern(std::shared_ptr<const re2::RE2> re);
  std::shared_ptr<const re2::RE2> re_;  // never null
  int64_t program_size_ = 0;
};

enum class GrepMode {
  kFilesWithMatches,  // which files have a matching line (each file's scan stops at its first)
  kContent,           // the matching lines, with their numbers
  kCount,             // how many lines match, per file
};

struct GrepOptions {
  GrepMode mode = GrepMode::kContent;
  bool case_insensitive = false;
  // Only files whose path matches this glob (glob.h); empty: every file of the session.
  std::string path_glob;
  // kContent: matching lines reported in all, at most. Default 10,000.
  int64_t max_lines = 10'000;
  // kContent: bytes kept of each reported line (cut at a UTF-8 boundary). Default 2,000.
  int64_t max_line_bytes = 2'000;
  // The whole search (reading the files included), checked between lines. Default 10 s.
  std::chrono::milliseconds max_time{10'000};
  // The most work one line may cost at worst: its length (plus one) times the pattern's
  // program size. Default 2^29: ~10 s at the worst rate measured; the largest file (20 MiB)
  // is searched whole by patterns of up to ~25 instructions ("TODO" has 8, "\bdef \w+\(" 14),
  // a 1 MiB line by patterns of up to ~500.
  int64_t max_line_work = int64_t{1} << 29;
};

struct GrepLine {
  int64_t number = 0;  // 1-based
  std::string text;    // without the line break; cut to max_line_bytes
  bool text_truncated = false;
};

struct GrepFileResult {
  std::string path;
  // Matching lines (kFilesWithMatches: 1, the scan stopped at the first).
  int64_t count = 0;
  // The file holds a NUL byte in its first 8 KiB: its lines are not reported (kContent).
  bool binary = false;
  std::vector<GrepLine> lines;  // kContent only
};

struct GrepResult {
  // Files with at least one matching line, ordered by path.
  std::vector<GrepFileResult> files;
  int64_t files_searched = 0;
  // The search stopped early (a bound in GrepOptions); `truncated_reason` says which.
  bool truncated = false;
  std::string truncated_reason;
};

// What a search may still spend: shared by the scans of all its files.
struct GrepBudget {
  explicit GrepBudget(const GrepOptions& options)
      : deadline(std::chrono::steady_clock::now() + options.max_time), lines_left(options.max_lines) {}

  std::chrono::steady_clock::time_point deadline;
  int64_t lines_left;          // kContent lines still reportable
  int64_t unchecked_work = 0;  // work since the clock was last read
};

// True if `content` looks binary: a NUL byte in its first 8 KiB (git's test).
bool LooksBinary(std::string_view content);

// Scans `content` (the file at `path`) for lines matching `pattern`, per `options.mode`;
// appends a GrepFileResult to result->files if any line matches. Draws on *budget; when a
// bound is hit (time, lines, a line too long for the pattern), sets result->truncated and
// its reason and returns false (stop the search).
bool GrepContent(const GrepPattern& pattern, std::string_view path, std::string_view content,
                 const GrepOptions& options, GrepBudget* budget, GrepResult* result);

}  // namespace brig::files

#endif  // BRIG_FILES_GREP_H_
