#include "server/api_json.h"

#include "brig/result_json.h"
#include "brig/text.h"
#include "names/utf8.h"

namespace brig::server {

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

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t at = i;
      if (utf8::Decode(s, &i) >= utf8::kInvalidByteBase) {
        out->append("\\ufffd");
      } else {
        out->append(s.substr(at, i - at));
      }
      continue;
    }
    ++i;
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7f) {
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    } else {
      out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

std::string Dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

}  // namespace brig::server
