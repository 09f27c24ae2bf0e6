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

#include "brig/grep.h"
#include "brig/status.h"

namespace re2 {
class RE2;
}

namespace brig::files {

// A compiled grep pattern, in the syntax brig/grep.h documents (RE2's; refused with
// InvalidArgument, saying why: back-references, lookaround, (?<name>...), \Z, \u, a count
// over 1000, a pattern longer than kMaxPatternBytes or one whose compiled form needs more
// than kMaxMemoryBytes).
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

// The options and results are the public API's (brig/grep.h).
using ::brig::GrepFileResult;
using ::brig::GrepLine;
using ::brig::GrepMode;
using ::brig::GrepOptions;
using ::brig::GrepResult;

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
