// What brig reports about a session and about a cleanup: plain values, copied out of the
// store (brig::SessionManager returns them). Every timestamp is microseconds since the Unix
// epoch, UTC (brig/text.h FormatTimestamp prints one).
#ifndef BRIG_SESSION_INFO_H_
#define BRIG_SESSION_INFO_H_

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace brig {

// Quotas of one session's files, given when it was created (SessionManager::Create) and
// stored with it. Each may only lower the process's own quota (SessionOptions): unset means
// that one. Every writer of the session's files (executions, FileService, Fork) holds the
// session to the lower of the two; past one a write fails with ResourceExhausted (inside an
// execution: the guest's write fails with ENOSPC / EFBIG) and nothing stored is lost.
struct SessionQuotas {
  std::optional<int64_t> max_files;        // files the session may hold
  std::optional<int64_t> max_total_bytes;  // sum of their sizes
  std::optional<int64_t> max_file_bytes;   // the size of any one file (at most kMaxFileBytes)

  bool empty() const { return !max_files && !max_total_bytes && !max_file_bytes; }
  friend bool operator==(const SessionQuotas&, const SessionQuotas&) = default;
};

struct SessionInfo {
  std::string thread_id;
  int64_t created_at = 0;
  int64_t last_accessed = 0;
  // The session is expired once expires_at <= now (SessionManager::IsExpired).
  int64_t expires_at = 0;
  // A JSON object, given when the session was created (never null).
  nlohmann::json metadata = nlohmann::json::object();
  int64_t file_count = 0;   // files stored for the session (empty directories not counted)
  int64_t total_bytes = 0;  // sum of their sizes (not counting the interpreter state)
  // As given at creation (copied by Fork; none for a session made by an execution or an
  // import). SessionManager::EffectiveQuotas says what applies.
  SessionQuotas quotas;
};

// What a cleanup deleted (or, in a dry run, would delete).
struct CleanupStats {
  int64_t sessions_deleted = 0;  // expired sessions
  int64_t files_deleted = 0;     // their files plus orphaned files
  int64_t bytes_freed = 0;       // sizes of those files plus the deleted interpreter states
};

}  // namespace brig

#endif  // BRIG_SESSION_INFO_H_
