#include "server/api_json.h"

#include "brig/result_json.h"
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
          {"total_bytes", s.total_bytes},
          {"quotas", QuotasJson(m.EffectiveQuotas(s))}};
}

nlohmann::json QuotasJson(const SessionQuotas& q) {
  nlohmann::json j = nlohmann::json::object();
  if (q.max_files) j["max_files"] = *q.max_files;
  if (q.max_total_bytes) j["max_total_bytes"] = *q.max_total_bytes;
  if (q.max_file_bytes) j["max_file_bytes"] = *q.max_file_bytes;
  return j;
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

nlohmann::json ExecutionJson(std::string_view thread_id, const SessionResult& s) { return ToJson(thread_id, s); }

std::string Dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace brig::server
