// brig::files::FileService: a session's files without executing code: read, write, edit,
// delete, list, glob and grep. The public brig::FileService (include/brig/files.h, whose
// contract this keeps) is a thin handle over it.
//
// Sessions. Writing to a session that does not exist creates it (SessionManager::
// GetOrCreate, default expiry), the way a first execution would: an agent may upload its
// input before running anything. Every other operation needs an existing session (NotFound
// otherwise). Any operation on an expired session is FailedPrecondition (see
// session_manager.h); each successful one sets the session's last_accessed.
//
// Paths are checked with store::ValidateFilePath (names/path_rules.h, the rules the guest's
// file system applies too): InvalidArgument otherwise. An empty directory the guest left is
// a row of type store::kDirectoryType: listed, not readable (FailedPrecondition), removed by
// Delete or by writing a file into it.
// The store is a flat map of paths, but the sandbox sees a directory tree, so a write may
// not turn a directory into a file or a file into a directory: writing /a/b while the file
// /a exists, or /a while /a/b exists, is FailedPrecondition.
//
// Writes (Write, Edit, Delete) are serialised with executions and each other: each takes
// the session's lock (store.LockSession, waiting up to SessionOptions::lock_timeout, then
// DeadlineExceeded), checks the quotas against the session's files as they are under the
// lock, and saves with store.SaveExecution (state unchanged). The save bumps the session's
// state version, so a process holding the session live reloads and sees the change. A
// write over a limit fails whole: ResourceExhausted for a file over store::kMaxFileBytes
// (20 MiB) or a session over its file-count or byte quota (SessionOptions), and nothing
// else changes. Quotas refuse only growth: replacing or shrinking a file is allowed in a
// session that is over a (since lowered) quota. REQUIRES (writes): the calling thread does
// not hold the session's lock.
//
// Thread-safety: safe for concurrent use from multiple threads. Borrows `sessions` (and so
// its store), which must outlive it.
//
// Errors: every call returns a Status; none throws. A failed call changes no file and no
// state (it may have set the session's last_accessed).
#ifndef BRIG_FILES_FILE_SERVICE_H_
#define BRIG_FILES_FILE_SERVICE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "brig/status.h"
#include "files/grep.h"
#include "session/session_manager.h"
#include "store/store.h"

namespace brig::files {

class FileService {
 public:
  explicit FileService(session::SessionManager& sessions) : sessions_(sessions), store_(sessions.store()) {}

  // `limit` bytes of the file from byte `offset` (limit < 0: to the end; an offset past the
  // end gives no bytes), with the file's info (its full size). InvalidArgument for a
  // negative offset; NotFound for a missing session or file.
  StatusOr<store::FileData> Read(std::string_view thread_id, std::string_view path, int64_t offset = 0,
                                 int64_t limit = -1);

  // Creates or replaces the file. `content_type` empty: detected from the path's extension
  // and the content's magic bytes (store/content_type.h). Returns the stored file's info.
  StatusOr<store::FileInfo> Write(std::string_view thread_id, std::string_view path, std::string content,
                                  std::string content_type = "");

  // Replaces `old_text` in the file with `new_text`: its only occurrence, or with
  // `replace_all` every (non-overlapping, left to right) occurrence. Returns how many were
  // replaced. InvalidArgument if old_text is empty or equals new_text; NotFound if the file
  // (or session) is missing or old_text does not occur; FailedPrecondition if it occurs
  // more than once without replace_all (the message gives the count). The content type is
  // detected again.
  StatusOr<int64_t> Edit(std::string_view thread_id, std::string_view path, std::string_view old_text,
                         std::string_view new_text, bool replace_all = false);

  // NotFound if the file (or session) is missing.
  Status Delete(std::string_view thread_id, std::string_view path);

  // Files whose path starts with `prefix` (a plain string prefix: "/tmp/" lists what is
  // under /tmp, "" or "/" everything), ordered by path, without content. InvalidArgument
  // for a prefix that is not "" and does not start with "/".
  StatusOr<std::vector<store::FileInfo>> List(std::string_view thread_id, std::string_view prefix = "");

  // Files whose path matches the shell-style `pattern` (glob.h), ordered by path.
  StatusOr<std::vector<store::FileInfo>> Glob(std::string_view thread_id, std::string_view pattern);

  // Lines of the session's files (those matching options.path_glob, if given) that match
  // the regular expression `pattern` (GrepPattern, grep.h), reported per options.mode. Work
  // is bounded (grep.h): a search that hits a bound returns what it found, marked truncated.
  // InvalidArgument for a bad pattern or glob.
  StatusOr<GrepResult> Grep(std::string_view thread_id, std::string_view pattern, const GrepOptions& options = {});

 private:
  // Upserts `file` (or, when null, deletes `deleted`) after checking the tree shape and the
  // quotas against the session's files as stored now, with SaveExecution at the current
  // version: Conflict if a writer that skips the lock saved in between.
  // REQUIRES: the caller holds the session's lock.
  // `quotas`: the session's own (SessionInfo::quotas).
  Status SaveUnderLock(std::string_view thread_id, const store::SessionQuotas& quotas, const store::FileWrite* file,
                       std::string_view deleted);

  session::SessionManager& sessions_;
  store::Store& store_;
};

}  // namespace brig::files

#endif  // BRIG_FILES_FILE_SERVICE_H_
