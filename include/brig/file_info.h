// What brig reports about a session's stored files: plain values, copied out of the store
// (brig::FileService returns them). Every timestamp is microseconds since the Unix epoch.
#ifndef BRIG_FILE_INFO_H_
#define BRIG_FILE_INFO_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace brig {

// The most one file may hold: 20 MiB (the stores' schemas enforce it too).
inline constexpr int64_t kMaxFileBytes = int64_t{20} << 20;

// The content type of an entry that stands for an empty directory the guest left
// (freedesktop's name for it): listed with the files, never counted as one, not readable.
inline constexpr std::string_view kDirectoryType = "inode/directory";

struct FileInfo {
  std::string path;          // absolute, e.g. "/home/user/data.csv"
  std::string content_type;  // MIME type, e.g. "text/csv"; kDirectoryType for a directory
  bool is_directory() const { return content_type == kDirectoryType; }
  int64_t size = 0;  // full size of the stored content, in bytes
  int64_t created_at = 0;
  int64_t modified_at = 0;
};

struct FileData {
  FileInfo info;
  std::string content;  // bytes (may hold NUL); the slice that was asked for
};

}  // namespace brig

#endif  // BRIG_FILE_INFO_H_
