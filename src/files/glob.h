// brig::files::GlobPattern: shell-style patterns over stored file paths, for `brig files
// glob` and grep's file filter. Paths in the store are plain strings; a pattern is matched
// against the whole path, component by component:
//   *       any run of characters within one component (also none)
//   ?       one character (a UTF-8 code point), not "/"
//   [abc] [a-z] [!a-z] [^a-z]   one character of a set (a "]" first in the set is literal)
//   **      as a whole component: zero or more components ("/a/**/b" matches /a/b, /a/x/b,
//           /a/x/y/b; "/**" matches every path); inside a component it is "*"
//   \c      the character c itself
// Unlike a shell, "*" and "?" also match a leading "." (hidden files are found). A pattern
// is absolute ("/..."), valid UTF-8, at most store::kMaxPathBytes bytes, with no empty
// component and no control characters; otherwise InvalidArgument.
//
// Matching a path costs at most (pattern components) x (path components) component
// matches, each linear-times-linear in their lengths: no backtracking blow-up.
//
// Thread-safety: a compiled GlobPattern is immutable; concurrent Matches calls are safe.
#ifndef BRIG_FILES_GLOB_H_
#define BRIG_FILES_GLOB_H_

#include <string>
#include <string_view>
#include <vector>

#include "brig/status.h"

namespace brig::files {

class GlobPattern {
 public:
  static StatusOr<GlobPattern> Compile(std::string_view pattern);

  // True iff the whole of `path` matches.
  bool Matches(std::string_view path) const;

  // The literal leading directories of the pattern, with a trailing "/" ("/home/user/" for
  // "/home/user/**/*.py"; "/" when the first component has a wildcard; the whole path when
  // the pattern has no wildcard at all). Every matching path starts with it, so callers
  // list the store by this prefix before matching.
  const std::string& literal_prefix() const { return literal_prefix_; }

 private:
  struct Token {
    enum Kind { kLiteral, kAnyOne, kStar, kClass } kind = kLiteral;
    char32_t c = 0;                                      // kLiteral
    std::vector<std::pair<char32_t, char32_t>> ranges;  // kClass
    bool negated = false;                                // kClass
  };
  struct Segment {
    bool globstar = false;  // the component is exactly "**"
    std::vector<Token> tokens;
  };

  static bool SegmentMatches(const Segment& seg, std::u32string_view name);
  static bool TokenMatches(const Token& t, char32_t c);

  std::vector<Segment> segments_;
  std::string literal_prefix_;
};

}  // namespace brig::files

#endif  // BRIG_FILES_GLOB_H_
