#include "names/path_rules.h"

#include "names/utf8.h"

namespace brig::names {

NameFault CheckName(std::string_view name) {
  if (name.empty()) return NameFault::kEmpty;
  if (name == "." || name == "..") return NameFault::kDot;
  if (name.size() > kMaxNameBytes) return NameFault::kTooLong;
  for (size_t i = 0; i < name.size();) {
    const char32_t c = utf8::Decode(name, &i);
    if (c >= utf8::kInvalidByteBase) return NameFault::kNotUtf8;
    if (c < 0x20 || (c >= 0x7F && c <= 0x9F)) return NameFault::kControl;
  }
  return NameFault::kNone;
}

const char* Explain(NameFault fault) {
  switch (fault) {
    case NameFault::kNone: return "the name is valid";
    case NameFault::kEmpty: return "a path component is empty (\"//\" or a trailing '/')";
    case NameFault::kDot: return "a path component is '.' or '..'";
    case NameFault::kTooLong: return "a path component is longer than 255 bytes";
    case NameFault::kNotUtf8: return "a path component is not valid UTF-8";
    case NameFault::kControl: return "a path component contains a control character";
  }
  return "the name is invalid";
}

const char* CheckPath(std::string_view path) {
  if (path.empty()) return "the path is empty";
  if (path.size() > kMaxPathBytes) return "the path is longer than 4096 bytes";
  if (path[0] != '/') return "the path is not absolute: it must start with '/'";
  if (path.size() == 1) return "the path names the root directory";
  size_t depth = 0;
  for (size_t start = 1;;) {
    const size_t end = path.find('/', start);
    const std::string_view comp = path.substr(start, end == std::string_view::npos ? path.npos : end - start);
    if (NameFault f = CheckName(comp); f != NameFault::kNone) return Explain(f);
    if (++depth > kMaxDepth) return "the path is deeper than 64 components";
    if (end == std::string_view::npos) return nullptr;
    start = end + 1;
  }
}

}  // namespace brig::names
