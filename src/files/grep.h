// Searching stored files' content line by line with a LineRegex: the result types of
// FileService::Grep and the scan of one file, kept free of the store so it is tested alone.
//
// Work is bounded three ways, because patterns and files come from agents: the regex runs
// in linear time (line_regex.h) against a step budget shared by the whole search, the lines
// reported are capped, and so is the text kept of each line. Hitting a bound ends the
// search early with GrepResult::truncated set and the reason; what was found is kept.
#ifndef BRIG_FILES_GREP_H_
#define BRIG_FILES_GREP_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "files/line_regex.h"

namespace brig::files {

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
  // Regex steps for the whole search (see LineRegex::Search). Default 5e8: at most ~5-10 s
  // of work (~70 M steps/s measured); patterns whose matches start with known characters
  // skip most of the text cheaply, and plain strings cost ~1/8 step per byte.
  int64_t max_steps = 500'000'000;
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

// True if `content` looks binary: a NUL byte in its first 8 KiB (git's test).
bool LooksBinary(std::string_view content);

// Scans `content` (the file at `path`) for lines matching `re`, per `options.mode`; appends
// a GrepFileResult to result->files if any line matches. Draws on *steps (regex budget) and
// *lines_left (kContent lines still reportable); when either runs out, sets
// result->truncated and its reason and returns false (stop the search).
bool GrepContent(const LineRegex& re, std::string_view path, std::string_view content, const GrepOptions& options,
                 int64_t* steps, int64_t* lines_left, GrepResult* result);

}  // namespace brig::files

#endif  // BRIG_FILES_GREP_H_
