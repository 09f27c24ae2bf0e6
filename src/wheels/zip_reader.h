// brig::wheels::ReadZip: the entries of a zip archive that came from outside (a wheel an agent
// uploaded), read with every bound checked before it is used. Only what wheels need: one disk,
// no zip64, no encryption, entries stored or deflated. Names are checked here only for what
// makes them unusable as names (UTF-8, NUL, control bytes, backslashes, absolute paths, drive
// letters, "." and ".." components, duplicates); where they may go is the caller's business.
//
// Refused (InvalidArgument, the message names the entry): a truncated archive or one whose
// end-of-central-directory record is missing or does not end the file; a central directory
// that runs outside the file, that disagrees with a local header (name, method, sizes), or
// whose entries overlap each other or the directory; more entries than ZipLimits::max_entries;
// an entry larger than max_entry_bytes, a total over max_total_bytes, or a compression ratio
// over max_ratio (zip bombs: these are checked on the declared sizes before anything is
// inflated, and inflation stops at the declared size); bad deflate data or a CRC-32 mismatch;
// symlinks and other non-regular files (from the Unix mode in the external attributes).
//
// Thread-safety: pure function.
#ifndef BRIG_WHEELS_ZIP_READER_H_
#define BRIG_WHEELS_ZIP_READER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "brig/status.h"

namespace brig::wheels {

struct ZipLimits {
  int64_t max_entries = 10'000;
  int64_t max_entry_bytes = int64_t{20} << 20;   // the store's largest file
  int64_t max_total_bytes = int64_t{200} << 20;  // all entries, uncompressed
  // Uncompressed / compressed size above which an entry of more than 64 KiB is refused.
  int64_t max_ratio = 200;
};

struct ZipEntry {
  std::string name;  // as stored ('/' separated, relative); a directory's ends with '/'
  std::string content;
  bool is_directory() const { return !name.empty() && name.back() == '/'; }
};

StatusOr<std::vector<ZipEntry>> ReadZip(std::string_view archive, const ZipLimits& limits = {});

}  // namespace brig::wheels

#endif  // BRIG_WHEELS_ZIP_READER_H_
