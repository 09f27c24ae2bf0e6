#include "server/api_json.h"

#include "brig/result_json.h"
#include "brig/text.h"

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

size_t Utf8SequenceAt(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
  }
  return n;
}


void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceAt(s, i);
      if (n == 0) {
        out->append("\\ufffd");
        ++i;
      } else {
        out->append(s.substr(i, n));
        i += n;
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
