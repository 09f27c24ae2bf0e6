#include "store/validation.h"

#include <string>

#include "names/utf8.h"

namespace brig::store {
namespace {

// UTF-8 validity and no control characters. `what` names the thing in messages.
Status CheckChars(std::string_view s, const char* what) {
  for (size_t i = 0; i < s.size();) {
    const char32_t cp = utf8::Decode(s, &i);
    if (cp >= utf8::kInvalidByteBase) return Status::InvalidArgument(std::string(what) + " is not valid UTF-8");
    if (cp == 0) return Status::InvalidArgument(std::string(what) + " contains a NUL byte");
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
      return Status::InvalidArgument(std::string(what) + " contains a control character");
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateThreadId(std::string_view thread_id) {
  if (thread_id.empty()) return Status::InvalidArgument("thread_id is empty");
  if (thread_id.size() > kMaxThreadIdBytes) {
    return Status::InvalidArgument("thread_id is longer than " + std::to_string(kMaxThreadIdBytes) +
                                   " bytes");
  }
  return CheckChars(thread_id, "thread_id");
}

Status ValidateFilePath(std::string_view path) {
  if (const char* fault = names::CheckPath(path)) return Status::InvalidArgument(std::string("file path: ") + fault);
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
