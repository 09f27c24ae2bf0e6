// The JSON form of an execution's outcome, as `brig exec --json` prints it and `brig serve`
// answers it:
//
//   {"ok": true, "stdout": "...", "stderr": "...", "stdout_truncated": false,
//    "stderr_truncated": false, "result": "42" | null,
//    "error": {"type": "...", "message": "...", "traceback": "..."} | null,
//    "exit_code": 3 | null, "failure": {"kind": "timeout", "message": "..."} | null,
//    "duration_ms": 1.25,
//    "session": {"thread_id": "...", "version": 7, "saved": true, "restored_from": "live",
//                "not_portable": {name: why}, "not_restored": {name: why},
//                "files_saved": [...], "files_deleted": [...], "snapshot": "pages",
//                "pages_unavailable": "..." (only when set)}}
//
// "session" is there only for an execution in a session. Strings hold what the guest wrote,
// which may be invalid UTF-8: dump with nlohmann::json::error_handler_t::replace.
//
// Thread-safety: plain functions of their arguments.
#ifndef BRIG_RESULT_JSON_H_
#define BRIG_RESULT_JSON_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "brig/sandbox.h"
#include "brig/session_info.h"
#include "brig/session_manager.h"
#include "brig/sessions.h"
#include "brig/status.h"
#include "brig/wheels.h"

namespace brig {

// Without "session": a one-off execution (brig exec without --session).
nlohmann::json ToJson(const ExecutionResult& result);
// With "session" for `thread_id`.
nlohmann::json ToJson(std::string_view thread_id, const SessionResult& result);
// The text ToJson(thread_id, result).dump(-1, ' ', false, error_handler_t::replace) makes,
// byte for byte, written without building the json value (what a server's worker answers
// each execution with).
std::string ToJsonText(std::string_view thread_id, const SessionResult& result);

// Reads back what ToJson(thread_id, result) made, checking everything: it may come from
// another process. InvalidArgument naming the first field that is missing, of the wrong
// type or out of range (an unknown failure kind, an exit code outside int). Unknown fields
// are ignored. *thread_id (if not null) gets session.thread_id.
StatusOr<SessionResult> SessionResultFromJson(const nlohmann::json& j, std::string* thread_id = nullptr);

// A session as `brig sessions ... --json` and the HTTP API show it: times as ISO 8601 text,
// "expired", and "quotas" holding the quotas that apply to it (m.EffectiveQuotas), one field
// per quota that is set.
nlohmann::json SessionInfoToJson(const SessionManager& m, const SessionInfo& s);

// A package installed from a wheel, as `brig pip ... --json` and the HTTP API show it:
// {"name", "version", "dist_info", "files", "bytes"}.
nlohmann::json ToJson(const InstalledPackage& p);
// An install's outcome: the package's fields, "replaced_version" (or null), "notes" and
// "site_packages".
nlohmann::json ToJson(const InstallResult& r);

}  // namespace brig

#endif  // BRIG_RESULT_JSON_H_
