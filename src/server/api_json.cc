#include "server/api_json.h"

#include "brig/text.h"

namespace brig::server {

nlohmann::json SessionInfoJson(const SessionManager& m, const SessionInfo& s) {
  return {{"thread_id", s.thread_id},
          {"created_at", FormatTimestamp(s.created_at)},
          {"last_accessed", FormatTimestamp(s.last_accessed)},
          {"expires_at", FormatTimestamp(s.expires_at)},
          {"expired", m.IsExpired(s)},
          {"metadata", s.metadata},
          {"file_count", s.file_count},
          {"total_bytes", s.total_bytes}};
}

nlohmann::json FileInfoJson(const FileInfo& f) {
  return {{"path", f.path},
          {"size", f.size},
          {"content_type", f.content_type},
          {"created_at", FormatTimestamp(f.created_at)},
          {"modified_at", FormatTimestamp(f.modified_at)}};
}

nlohmann::json GrepResultJson(const GrepResult& result, GrepMode mode) {
  nlohmann::json files = nlohmann::json::array();
  for (const GrepFileResult& f : result.files) {
    nlohmann::json jf = {{"path", f.path}, {"count", f.count}, {"binary", f.binary}};
    if (mode == GrepMode::kContent) {
      nlohmann::json lines = nlohmann::json::array();
      for (const GrepLine& l : f.lines)
        lines.push_back({{"line", l.number}, {"text", l.text}, {"text_truncated", l.text_truncated}});
      jf["lines"] = std::move(lines);
    }
    files.push_back(std::move(jf));
  }
  return {{"files", files},
          {"files_searched", result.files_searched},
          {"truncated", result.truncated},
          {"truncated_reason", result.truncated ? nlohmann::json(result.truncated_reason) : nlohmann::json()}};
}

nlohmann::json ExecutionJson(std::string_view thread_id, const SessionResult& s) {
  const ExecutionResult& r = s.execution;
  nlohmann::json j;
  j["ok"] = r.ok;
  j["stdout"] = r.stdout_text;
  j["stderr"] = r.stderr_text;
  j["stdout_truncated"] = r.stdout_truncated;
  j["stderr_truncated"] = r.stderr_truncated;
  j["result"] = r.result ? nlohmann::json(*r.result) : nlohmann::json(nullptr);
  j["error"] = r.error ? nlohmann::json{{"type", r.error->type}, {"message", r.error->message}, {"traceback", r.error->traceback}}
                       : nlohmann::json(nullptr);
  j["exit_code"] = r.exit_code ? nlohmann::json(*r.exit_code) : nlohmann::json(nullptr);
  j["failure"] = r.failure != Failure::kNone
                     ? nlohmann::json{{"kind", std::string(FailureName(r.failure))}, {"message", r.failure_message}}
                     : nlohmann::json(nullptr);
  j["duration_ms"] = r.duration_ms;
  nlohmann::json session = {{"thread_id", thread_id},         {"version", s.version},
                            {"saved", s.saved},               {"restored_from", s.restored_from},
                            {"not_portable", s.not_portable}, {"not_restored", s.not_restored},
                            {"files_saved", s.files_saved},   {"files_deleted", s.files_deleted},
                            {"snapshot", s.snapshot}};
  if (!s.pages_unavailable.empty()) session["pages_unavailable"] = s.pages_unavailable;
  j["session"] = std::move(session);
  return j;
}

std::string Dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace brig::server
