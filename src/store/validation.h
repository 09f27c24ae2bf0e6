// Checks on everything a caller names in the store: thread ids, file paths, file sizes.
// Pure functions with no I/O, shared by the store, the session layer and the CLI, so that a
// bad name is refused with the same words wherever it enters.
#ifndef BRIG_STORE_VALIDATION_H_
#define BRIG_STORE_VALIDATION_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "brig/status.h"

namespace brig::store {

inline constexpr size_t kMaxThreadIdBytes = 255;
inline constexpr size_t kMaxPathBytes = 4096;
inline constexpr size_t kMaxPathDepth = 64;  // components, "/a/b" has 2
// One file's content. The schemas of both backends enforce the same number (CHECK).
inline constexpr int64_t kMaxFileBytes = int64_t{20} << 20;

// OK iff `thread_id` is 1..255 bytes of valid UTF-8 with no control characters (C0, DEL, C1)
// and no NUL. Else InvalidArgument saying which rule failed.
Status ValidateThreadId(std::string_view thread_id);

// OK iff `path` is absolute ("/..."), valid UTF-8, at most kMaxPathBytes bytes and
// kMaxPathDepth components, has no empty, "." or ".." component, no trailing "/", no control
// characters and none of < > : " | ? * \. The root "/" itself is not a file path.
// Else InvalidArgument.
Status ValidateFilePath(std::string_view path);

// OK iff `size` <= kMaxFileBytes, else ResourceExhausted naming `path`.
Status ValidateFileSize(std::string_view path, int64_t size);

// True iff `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);

}  // namespace brig::store

#endif  // BRIG_STORE_VALIDATION_H_
