#include "files/grep.h"

#include <re2/re2.h>

#include <algorithm>

namespace brig::files {
namespace {

// Work (bytes times program size) between two readings of the clock: under 0.1 s at the
// worst rate measured (see grep.h), ~1 ms for a simple pattern.
constexpr int64_t kWorkBetweenClockChecks = int64_t{1} << 22;

// The longest prefix of `line` of at most `max` bytes that does not split a UTF-8 sequence.
std::string_view CutLine(std::string_view line, int64_t max) {
  if (static_cast<int64_t>(line.size()) <= max) return line;
  size_t cut = static_cast<size_t>(std::max<int64_t>(max, 0));
  while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
  return line.substr(0, cut);
}

// Why RE2 refused `re`, in grep's words: what is wrong, where, and for what RE2 spells
// otherwise than Python's re, how to write it.
std::string Explain(const re2::RE2& re) {
  const std::string& arg = re.error_arg();
  std::string why;
  switch (re.error_code()) {
    case re2::RE2::ErrorBadEscape:
      if (arg.size() >= 2 && arg[1] >= '1' && arg[1] <= '9') {
        why = "back-references are not supported: " + arg;
      } else if (arg.starts_with("\\u") || arg.starts_with("\\U")) {
        why = "unknown escape " + arg + ": write a code point as \\x{HHHH}";
      } else if (arg == "\\Z") {
        why = "unknown escape \\Z: write \\z or $ for the end of the line";
      } else {
        why = "unknown escape " + arg;
      }
      break;
    case re2::RE2::ErrorBadPerlOp: {
      // RE2 names "(?<" for "(?<=" and "(?<!" too: look at the character after it.
      const size_t at = re.pattern().find(arg);
      const std::string op = at == std::string::npos ? arg : re.pattern().substr(at, arg.size() + 1);
      if (op.starts_with("(?=") || op.starts_with("(?!") || op.starts_with("(?<=") || op.starts_with("(?<!")) {
        why = "lookahead and lookbehind are not supported: " + op;
      } else if (arg.starts_with("(?<")) {
        why = "write a named group as (?P<name>...)";
      } else {
        why = "unknown group syntax " + arg;
      }
      break;
    }
    case re2::RE2::ErrorMissingParen: why = "missing ')' in " + arg; break;
    case re2::RE2::ErrorUnexpectedParen: why = "unmatched ')' in " + arg; break;
    case re2::RE2::ErrorMissingBracket: why = "missing ']' in " + arg; break;
    case re2::RE2::ErrorBadCharClass: why = "bad character class " + arg; break;
    case re2::RE2::ErrorBadCharRange: why = "bad character class or range " + arg; break;
    case re2::RE2::ErrorTrailingBackslash: why = "trailing backslash"; break;
    case re2::RE2::ErrorRepeatArgument: why = "nothing to repeat before " + arg; break;
    case re2::RE2::ErrorRepeatOp: why = "nothing to repeat: " + arg + " repeats a repetition (group it first)"; break;
    case re2::RE2::ErrorRepeatSize:
      why = "bad repetition count " + arg + " (at most 1000, nested counts multiplied, and min <= max)";
      break;
    case re2::RE2::ErrorBadUTF8: why = "not valid UTF-8"; break;
    case re2::RE2::ErrorBadNamedCapture: why = "bad group name " + arg; break;
    case re2::RE2::ErrorPatternTooLarge:
      return "regular expression is too large (its compiled form needs more than " +
             std::to_string(GrepPattern::kMaxMemoryBytes >> 20) + " MiB)";
    default: why = re.error(); break;
  }
  return "bad regular expression: " + why;
}

}  // namespace

GrepPattern::GrepPattern(std::shared_ptr<const re2::RE2> re) : re_(std::move(re)), program_size_(re_->ProgramSize()) {}

StatusOr<GrepPattern> GrepPattern::Compile(std::string_view pattern, bool case_insensitive) {
  if (pattern.size() > kMaxPatternBytes) {
    return Status::InvalidArgument("regular expression is longer than " + std::to_string(kMaxPatternBytes) +
                                   " bytes");
  }
  re2::RE2::Options options;
  options.set_encoding(re2::RE2::Options::EncodingUTF8);
  options.set_case_sensitive(!case_insensitive);
  options.set_never_capture(true);  // grep asks only whether a line matches
  options.set_log_errors(false);    // errors are returned, not printed
  options.set_max_mem(kMaxMemoryBytes);
  auto re = std::make_shared<const re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re->ok()) return Status::InvalidArgument(Explain(*re));
  return GrepPattern(std::move(re));
}

bool GrepPattern::Matches(std::string_view line) const {
  return re2::RE2::PartialMatch(re2::StringPiece(line.data(), line.size()), *re_);
}

bool LooksBinary(std::string_view content) {
  return content.substr(0, 8192).find('\0') != std::string_view::npos;
}

bool GrepContent(const GrepPattern& pattern, std::string_view path, std::string_view content,
                 const GrepOptions& options, GrepBudget* budget, GrepResult* result) {
  GrepFileResult file;
  file.path = std::string(path);
  file.binary = LooksBinary(content);
  int64_t number = 0;
  // Ends the search at line `number`.
  auto stop = [&](std::string why) {
    result->truncated = true;
    result->truncated_reason = std::move(why);
    return false;
  };
  auto where = [&] { return file.path + " at line " + std::to_string(number); };
  const int64_t per_byte = std::max<int64_t>(pattern.program_size(), 1);
  bool keep_going = true;
  for (size_t start = 0; start < content.size();) {
    size_t end = content.find('\n', start);
    if (end == std::string_view::npos) end = content.size();
    const std::string_view line = content.substr(start, end - start);
    start = end + 1;
    ++number;
    const int64_t work = (static_cast<int64_t>(line.size()) + 1) * per_byte;
    if (work > options.max_line_work) {
      keep_going = stop(where() + " is " + std::to_string(line.size()) +
                        " bytes long, more than this pattern can search in bounded time (" +
                        std::to_string(options.max_line_work / per_byte - 1) +
                        " bytes); simplify the pattern or narrow the files (a path glob)");
      break;
    }
    budget->unchecked_work += work;
    if (number == 1 || budget->unchecked_work >= kWorkBetweenClockChecks) {
      budget->unchecked_work = 0;
      if (std::chrono::steady_clock::now() >= budget->deadline) {
        keep_going = stop("the search ran out of time (" + std::to_string(options.max_time.count()) + " ms) in " +
                          where() + "; narrow the files (a path glob) or simplify the pattern");
        break;
      }
    }
    if (!pattern.Matches(line)) continue;
    if (options.mode == GrepMode::kContent && !file.binary) {
      if (budget->lines_left <= 0) {
        keep_going = stop("more than " + std::to_string(options.max_lines) + " matching lines; the first ones are shown");
        break;
      }
      --budget->lines_left;
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
