// A guard for untrusted JSON text before it is parsed: nlohmann parses any depth, but copying
// and dumping a value recurse, so a body of a million '[' would overflow the stack.
#ifndef BRIG_UTIL_JSON_DEPTH_H_
#define BRIG_UTIL_JSON_DEPTH_H_

#include <cstddef>
#include <string_view>

namespace brig {

// Deepest nesting of arrays and objects a request may have (the HTTP API and MCP alike).
inline constexpr int kMaxJsonDepth = 64;

// Whether `text` nests arrays and objects deeper than kMaxJsonDepth (strings and their
// escapes skipped). Malformed text is left to the parser.
inline bool JsonNestsTooDeep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, maybe a '"'
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace brig

#endif  // BRIG_UTIL_JSON_DEPTH_H_
