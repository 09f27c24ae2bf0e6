// Searching a session's files line by line with a regular expression
// (brig::FileService::Grep): the options and the result.
//
// Patterns use RE2's syntax (https://github.com/google/re2/wiki/Syntax), which is Python
// re's for everything grep needs: literals, ".", [abc] [^a-z] [[:alpha:]], \d \w \s \b
// (ASCII), \pL and \p{Greek} (Unicode classes), groups (...), (?:...) and (?P<name>...), a|b,
// * + ? {n} {n,} {n,m} and their lazy forms, flags such as (?i), escapes \t \n \x41 \x{1F600}
// \. and other punctuation, \Q...\E (literal text). "^" and "$" are the start and end of the
// line. Text and pattern are UTF-8: "." and classes match one code point, and a byte that is
// not valid UTF-8 is matched only by \C (any byte).
// Refused with InvalidArgument, saying why: back-references (\1), lookahead and lookbehind
// ((?=...), (?<=...)), (?<name>...) (write (?P<name>...)), \Z (write \z or $), \u (write
// \x{...}); a count over 1000, a pattern longer than 4096 bytes or one whose compiled form
// needs more than 8 MiB.
//
// Work is bounded, because patterns and files come from agents: matching is linear in the
// text (no backtracking), a line is searched only if its length times the pattern's size is
// within max_line_work, the whole search stops at max_time, and the lines reported and the
// text kept of each are capped. Hitting a bound ends the search early with
// GrepResult::truncated set and the reason; what was found is kept.
#ifndef BRIG_GREP_H_
#define BRIG_GREP_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace brig {

enum class GrepMode {
  kFilesWithMatches,  // which files have a matching line (each file's scan stops at its first)
  kContent,           // the matching lines, with their numbers
  kCount,             // how many lines match, per file
};

struct GrepOptions {
  GrepMode mode = GrepMode::kContent;
  bool case_insensitive = false;
  // Only files whose path matches this shell-style glob (*, ?, [...], ** across
  // directories); empty: every file of the session.
  std::string path_glob;
  // kContent: matching lines reported in all, at most. Default 10,000.
  int64_t max_lines = 10'000;
  // kContent: bytes kept of each reported line (cut at a UTF-8 boundary). Default 2,000.
  int64_t max_line_bytes = 2'000;
  // The whole search (reading the files included), checked between lines. Default 10 s.
  std::chrono::milliseconds max_time{10'000};
  // The most work one line may cost at worst: its length (plus one) times the pattern's
  // compiled size. Default 2^29 (~10 s at the worst rate measured): the largest file (20 MiB)
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

}  // namespace brig

#endif  // BRIG_GREP_H_
