#include "brig/files.h"

#include "api/access.h"
#include "files/file_service.h"

namespace brig {

FileService::FileService(SessionManager& sessions)
    : impl_(std::make_unique<files::FileService>(internal::Access::Manager(sessions))) {}
FileService::~FileService() = default;

StatusOr<FileData> FileService::Read(std::string_view thread_id, std::string_view path, int64_t offset,
                                     int64_t limit) {
  return impl_->Read(thread_id, path, offset, limit);
}
StatusOr<FileInfo> FileService::Write(std::string_view thread_id, std::string_view path, std::string content,
                                      std::string content_type) {
  return impl_->Write(thread_id, path, std::move(content), std::move(content_type));
}
StatusOr<int64_t> FileService::Edit(std::string_view thread_id, std::string_view path, std::string_view old_text,
                                    std::string_view new_text, bool replace_all) {
  return impl_->Edit(thread_id, path, old_text, new_text, replace_all);
}
Status FileService::Delete(std::string_view thread_id, std::string_view path) { return impl_->Delete(thread_id, path); }
StatusOr<std::vector<FileInfo>> FileService::List(std::string_view thread_id, std::string_view prefix) {
  return impl_->List(thread_id, prefix);
}
StatusOr<std::vector<FileInfo>> FileService::Glob(std::string_view thread_id, std::string_view pattern) {
  return impl_->Glob(thread_id, pattern);
}
StatusOr<GrepResult> FileService::Grep(std::string_view thread_id, std::string_view pattern,
                                       const GrepOptions& options) {
  return impl_->Grep(thread_id, pattern, options);
}

}  // namespace brig
