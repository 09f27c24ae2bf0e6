#include "store/validation.h"

#include <string>

namespace brig::store {
namespace {

// Decodes the code point starting at s[i]; returns its length, or 0 if malformed.
size_t DecodeUtf8(std::string_view s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  size_t len;
  uint32_t min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2, min = 0x80, *cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, min = 0x800, *cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, min = 0x10000, *cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    *cp = (*cp << 6) | (b(k) & 0x3F);
  }
  if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) return 0;
  return len;
}

bool IsControl(uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

// Shared walk: UTF-8 validity and no control characters. `what` names the thing in messages.
Status CheckChars(std::string_view s, const char* what) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    const size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) return Status::InvalidArgument(std::string(what) + " is not valid UTF-8");
    if (cp == 0) return Status::InvalidArgument(std::string(what) + " contains a NUL byte");
    if (IsControl(cp)) {
      return Status::InvalidArgument(std::string(what) + " contains a control character");
    }
    i += n;
  }
  return Status::Ok();
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    uint32_t cp;
    const size_t n = DecodeUtf8(s, i, &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

Status ValidateThreadId(std::string_view thread_id) {
  if (thread_id.empty()) return Status::InvalidArgument("thread_id is empty");
  if (thread_id.size() > kMaxThreadIdBytes) {
    return Status::InvalidArgument("thread_id is longer than " + std::to_string(kMaxThreadIdBytes) +
                                   " bytes");
  }
  return CheckChars(thread_id, "thread_id");
}

Status ValidateFilePath(std::string_view path) {
  if (path.empty()) return Status::InvalidArgument("file path is empty");
  if (path.size() > kMaxPathBytes) {
    return Status::InvalidArgument("file path is longer than " + std::to_string(kMaxPathBytes) +
                                   " bytes");
  }
  if (path[0] != '/') return Status::InvalidArgument("file path is not absolute: it must start with '/'");
  if (Status s = CheckChars(path, "file path"); !s.ok()) return s;
  for (char c : path) {
    if (std::string_view("<>:\"|?*\\").find(c) != std::string_view::npos) {
      return Status::InvalidArgument(std::string("file path contains the forbidden character '") + c +
                                     "'");
    }
  }
  size_t depth = 0;
  size_t start = 1;  // just past a '/'
  while (true) {
    const size_t end = path.find('/', start);
    const std::string_view comp =
        path.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (comp.empty()) {
      return Status::InvalidArgument(path.size() == 1 ? "file path names the root directory"
                                                      : "file path has an empty component (\"//\" or a trailing '/')");
    }
    if (comp == "." || comp == "..") {
      return Status::InvalidArgument("file path has a '.' or '..' component");
    }
    if (++depth > kMaxPathDepth) {
      return Status::InvalidArgument("file path is deeper than " + std::to_string(kMaxPathDepth) +
                                     " components");
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return Status::Ok();
}

Status ValidateFileSize(std::string_view path, int64_t size) {
  if (size < 0) return Status::InvalidArgument("negative file size");
  if (size > kMaxFileBytes) {
    return Status::ResourceExhausted("file '" + std::string(path) + "' is " + std::to_string(size) +
                                     " bytes; the limit per file is " + std::to_string(kMaxFileBytes) +
                                     " bytes (20 MiB)");
  }
  return Status::Ok();
}

}  // namespace brig::store
