#include "files/grep.h"

#include <algorithm>

namespace brig::files {
namespace {

// The longest prefix of `line` of at most `max` bytes that does not split a UTF-8 sequence.
std::string_view CutLine(std::string_view line, int64_t max) {
  if (static_cast<int64_t>(line.size()) <= max) return line;
  size_t cut = static_cast<size_t>(std::max<int64_t>(max, 0));
  while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
  return line.substr(0, cut);
}

}  // namespace

bool LooksBinary(std::string_view content) {
  return content.substr(0, 8192).find('\0') != std::string_view::npos;
}

bool GrepContent(const LineRegex& re, std::string_view path, std::string_view content, const GrepOptions& options,
                 int64_t* steps, int64_t* lines_left, GrepResult* result) {
  GrepFileResult file;
  file.path = std::string(path);
  file.binary = LooksBinary(content);
  bool keep_going = true;
  int64_t number = 0;
  for (size_t start = 0; start < content.size();) {
    size_t end = content.find('\n', start);
    if (end == std::string_view::npos) end = content.size();
    const std::string_view line = content.substr(start, end - start);
    start = end + 1;
    ++number;
    const LineRegex::Outcome outcome = re.Search(line, steps);
    if (outcome == LineRegex::Outcome::kOutOfBudget) {
      result->truncated = true;
      result->truncated_reason = "the search used its work budget (" + std::to_string(options.max_steps) +
                                 " regex steps) in " + file.path + " at line " + std::to_string(number) +
                                 "; narrow the files (a path glob) or simplify the pattern";
      keep_going = false;
      break;
    }
    if (outcome == LineRegex::Outcome::kNoMatch) continue;
    if (options.mode == GrepMode::kContent && !file.binary) {
      if (*lines_left <= 0) {
        result->truncated = true;
        result->truncated_reason =
            "more than " + std::to_string(options.max_lines) + " matching lines; the first ones are shown";
        keep_going = false;
        break;
      }
      --*lines_left;
      const std::string_view kept = CutLine(line, options.max_line_bytes);
      file.lines.push_back(GrepLine{number, std::string(kept), kept.size() < line.size()});
    }
    ++file.count;
    if (options.mode == GrepMode::kFilesWithMatches) break;
  }
  if (file.count > 0) result->files.push_back(std::move(file));
  return keep_going;
}

}  // namespace brig::files
