// brig::FileService: a session's files without executing code: read, write, edit, delete,
// list, glob and grep. What `brig files ...` runs, and what an agent's file tools call.
//
//   brig::FileService files(manager);                      // a brig::SessionManager
//   files.Write("agent-7", "/home/user/data.csv", "a,b\n1,2\n");
//   auto csv = files.Read("agent-7", "/home/user/data.csv");   // csv.value().content
//
// The guest sees a session's files under /home/user and /tmp at the same paths; files stored
// elsewhere (e.g. /data/...) are the session's too, kept in the store only.
//
// Sessions. Writing to a session that does not exist creates it (default expiry), the way a
// first execution would: an agent may upload its input before running anything. Every
// other operation needs an existing session (NotFound otherwise). Any operation on an
// expired session is FailedPrecondition; each successful one sets its last_accessed.
//
// Paths are absolute, at most 4096 bytes and 64 components; each component 1..255 bytes of
// UTF-8, not "." or "..", with no control character (the rules the guest's file system
// applies too); InvalidArgument otherwise. An empty directory the guest left is an entry of
// type kDirectoryType: listed, not readable (FailedPrecondition), removed by Delete or by
// writing a file into it. A write may not turn a directory into a file or a file into a
// directory: writing /a/b while the file /a exists, or /a while /a/b exists, is
// FailedPrecondition.
//
// Writes (Write, Edit, Delete) are serialised with executions and each other (the session's
// lock, waited for up to SessionOptions::lock_timeout, then DeadlineExceeded), and a
// process that holds the session live sees them at its next execution. A write over a limit
// fails whole: ResourceExhausted for a file over kMaxFileBytes (20 MiB) or a session over
// its file-count or byte quota; quotas refuse only growth, so replacing or shrinking a file
// is allowed in a session over a (since lowered) quota. REQUIRES (writes): the calling
// thread holds no lock of the session (is not inside an execution of it).
//
// Thread-safety: safe for concurrent use from multiple threads. Borrows the SessionManager
// (and so its Store), which must outlive it.
//
// Errors: every call returns a Status; none throws. A failed call changes no file and no
// state (it may have set the session's last_accessed).
#ifndef BRIG_FILES_H_
#define BRIG_FILES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "brig/file_info.h"
#include "brig/grep.h"
#include "brig/session_manager.h"
#include "brig/status.h"

namespace brig {

namespace files {
class FileService;
}

class FileService {
 public:
  // Borrows `sessions` (its policy: expiry, quotas, lock timeout) for its lifetime.
  explicit FileService(SessionManager& sessions);
  ~FileService();
  FileService(const FileService&) = delete;
  FileService& operator=(const FileService&) = delete;

  // `limit` bytes of the file from byte `offset` (limit < 0: to the end; an offset past the
  // end gives no bytes), with the file's info (its full size). InvalidArgument for a
  // negative offset; NotFound for a missing session or file; FailedPrecondition for a
  // directory.
  StatusOr<FileData> Read(std::string_view thread_id, std::string_view path, int64_t offset = 0, int64_t limit = -1);

  // Creates or replaces the file. `content_type` empty: detected from the path's extension
  // and the content's magic bytes. Returns the stored file's info.
  StatusOr<FileInfo> Write(std::string_view thread_id, std::string_view path, std::string content,
                           std::string content_type = "");

  // Replaces `old_text` in the file with `new_text`: its only occurrence, or with
  // `replace_all` every (non-overlapping, left to right) occurrence. Returns how many were
  // replaced. InvalidArgument if old_text is empty or equals new_text; NotFound if the file
  // (or session) is missing or old_text does not occur; FailedPrecondition if it occurs
  // more than once without replace_all (the message gives the count). The content type is
  // detected again.
  StatusOr<int64_t> Edit(std::string_view thread_id, std::string_view path, std::string_view old_text,
                         std::string_view new_text, bool replace_all = false);

  // Deletes a file or an empty directory entry. NotFound if it (or the session) is missing.
  Status Delete(std::string_view thread_id, std::string_view path);

  // Files whose path starts with `prefix` (a plain string prefix: "/tmp/" lists what is
  // under /tmp, "" or "/" everything), ordered by path (bytewise), without content.
  // InvalidArgument for a prefix that is not "" and does not start with "/".
  StatusOr<std::vector<FileInfo>> List(std::string_view thread_id, std::string_view prefix = "");

  // Files whose path matches the shell-style `pattern` (matched against the whole path),
  // ordered by path: "*" any run of characters within one component, "?" one character,
  // [abc] [a-z] [!a-z] [^a-z] one of a set, "**" as a whole component zero or more
  // components ("/home/user/**/*.py"), \c the character c. "*" and "?" also match a leading
  // "." (hidden files are found). InvalidArgument for a pattern that is not absolute, not
  // UTF-8, too long, or has an empty component or a control character.
  StatusOr<std::vector<FileInfo>> Glob(std::string_view thread_id, std::string_view pattern);

  // Lines of the session's files (those matching options.path_glob, if given) that match
  // the regular expression `pattern` (brig/grep.h), reported per options.mode. A search that
  // hits a bound returns what it found, marked truncated. InvalidArgument for a bad pattern
  // or glob.
  StatusOr<GrepResult> Grep(std::string_view thread_id, std::string_view pattern, const GrepOptions& options = {});

 private:
  std::unique_ptr<files::FileService> impl_;  // never null
};

}  // namespace brig

#endif  // BRIG_FILES_H_
