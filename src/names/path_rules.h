// The one set of rules for file names, wherever a name is made: by the guest (open, mkdir,
// rename in the VFS), by the host (brig files, the HTTP API) and by the store. A name the
// guest can create is one the store can hold, and the other way round, so a session never
// holds a file it cannot save or load.
//
// The rules (docs/architecture.md, "Which file names"): a path is absolute, at most
// kMaxPathBytes bytes and kMaxDepth components deep; each component is 1..kMaxNameBytes bytes
// of well-formed UTF-8, not "." or "..", with no control character (U+0000-U+001F, U+007F,
// U+0080-U+009F). Every other character is allowed: ':' '?' '*' '<' '>' '|' '"' '\' and
// spaces are ordinary characters here ("12:00.log", "report: final.txt").
#ifndef BRIG_NAMES_PATH_RULES_H_
#define BRIG_NAMES_PATH_RULES_H_

#include <cstddef>
#include <string_view>

namespace brig::names {

inline constexpr size_t kMaxNameBytes = 255;   // one component (POSIX NAME_MAX)
inline constexpr size_t kMaxPathBytes = 4096;  // a whole absolute path (PATH_MAX)
inline constexpr size_t kMaxDepth = 64;        // components: "/a/b" has 2

// The first rule a name breaks.
enum class NameFault {
  kNone,
  kEmpty,       // "" (a "//" or a trailing '/' in a path)
  kDot,         // "." or ".."
  kTooLong,     // more than kMaxNameBytes bytes            -> ENAMETOOLONG in the guest
  kNotUtf8,     // not well-formed UTF-8                     -> EILSEQ
  kControl,     // holds a control character (NUL included)  -> EINVAL
};

// Checks one path component (no '/' in it).
NameFault CheckName(std::string_view name);

// A sentence fragment saying which rule was broken, for messages:
// "a path component is longer than 255 bytes".
const char* Explain(NameFault fault);

// What is wrong with a whole absolute path, or nullptr if it follows every rule.
// "/" itself is not a file path.
const char* CheckPath(std::string_view path);

}  // namespace brig::names

#endif  // BRIG_NAMES_PATH_RULES_H_
