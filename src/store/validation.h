// Checks on everything a caller names in the store: thread ids, file paths, file sizes.
// Pure functions with no I/O, shared by the store, the session layer and the CLI, so that a
// bad name is refused with the same words wherever it enters.
#ifndef BRIG_STORE_VALIDATION_H_
#define BRIG_STORE_VALIDATION_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "brig/file_info.h"
#include "brig/status.h"
#include "names/path_rules.h"

namespace brig::store {

inline constexpr size_t kMaxThreadIdBytes = 255;
inline constexpr size_t kMaxPathBytes = names::kMaxPathBytes;
inline constexpr size_t kMaxPathDepth = names::kMaxDepth;  // components, "/a/b" has 2
// One file's content (brig/file_info.h). The schemas of both backends enforce the same
// number (CHECK).
using ::brig::kMaxFileBytes;

// OK iff `thread_id` is 1..255 bytes of valid UTF-8 with no control characters (C0, DEL, C1)
// and no NUL. Else InvalidArgument saying which rule failed.
Status ValidateThreadId(std::string_view thread_id);

// OK iff `path` follows names/path_rules.h (the rules the guest's file system enforces when
// a name is made): absolute, at most 4096 bytes and 64 components, each component 1..255
// bytes of UTF-8 with no control character and not "." or "..". Any other character (':',
// '?', '*', spaces, ...) is fine. Else InvalidArgument saying which rule failed.
Status ValidateFilePath(std::string_view path);

// OK iff `size` <= kMaxFileBytes, else ResourceExhausted naming `path`.
Status ValidateFileSize(std::string_view path, int64_t size);

}  // namespace brig::store

#endif  // BRIG_STORE_VALIDATION_H_
