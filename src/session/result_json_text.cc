// ToJsonText (include/brig/result_json.h): ToJson(thread_id, result) dumped, written straight
// into one string. A worker process answers every execution with this text; building the json
// value first and dumping it was ~11% of a worker's CPU for `x = 1` (bench/RESULTS.md,
// 2026-12-05). The bytes must stay those of the dump: tests/server/result_json_text_test.cc
// compares the two on results of every shape and on random bytes.
#include <array>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "brig/result_json.h"
#include "brig/text.h"

namespace brig {
namespace {

// A JSON string as nlohmann's dump writes it with ensure_ascii off and
// error_handler_t::replace: `"` `\` and the C0 controls escaped (the short forms where JSON
// has them, else \u00xx in lower-case hex), everything else as it is, and each maximal
// ill-formed UTF-8 subsequence replaced by one U+FFFD (Unicode's recommended practice, which
// its decoder follows: a bad byte that cannot start a sequence is one subsequence; a sequence
// cut short ends before the byte that breaks it, which then starts afresh).
void AppendString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  out->push_back('"');
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      // A run of bytes that need nothing: appended at once.
      size_t end = i;
      while (end < n) {
        const auto d = static_cast<unsigned char>(s[end]);
        if (d < 0x20 || d == '"' || d == '\\' || d >= 0x80) break;
        ++end;
      }
      if (end > i) {
        out->append(s.data() + i, end - i);
        i = end;
        continue;
      }
      ++i;
      switch (c) {
        case '"': out->append("\\\""); break;
        case '\\': out->append("\\\\"); break;
        case '\b': out->append("\\b"); break;
        case '\t': out->append("\\t"); break;
        case '\n': out->append("\\n"); break;
        case '\f': out->append("\\f"); break;
        case '\r': out->append("\\r"); break;
        default:
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
      }
      continue;
    }
    // A lead byte: how long its sequence is, and the range its second byte must be in.
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // no overlong forms
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // no overlong forms
      if (c == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
    }
    if (len == 0) {  // cannot start a sequence
      out->append(kReplacement);
      ++i;
      continue;
    }
    size_t k = 1;
    for (; k < len && i + k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      const bool fits = k == 1 ? (d >= lo && d <= hi) : (d >= 0x80 && d <= 0xBF);
      if (!fits) break;
    }
    if (k == len) {
      out->append(s.data() + i, len);
    } else {
      out->append(kReplacement);  // the byte that broke it (if any) is looked at again
    }
    i += k;
  }
  out->push_back('"');
}

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, static_cast<size_t>(r.ptr - buf));
}

// As nlohmann's dump: non-finite numbers as null, the rest in its shortest round-trip form.
void AppendDouble(std::string* out, double v) {
  if (!std::isfinite(v)) {
    out->append("null");
    return;
  }
  std::array<char, 64> buf;
  char* end = nlohmann::detail::to_chars(buf.data(), buf.data() + buf.size(), v);
  out->append(buf.data(), static_cast<size_t>(end - buf.data()));
}

void AppendBool(std::string* out, bool v) { out->append(v ? "true" : "false"); }

// `"key":` (keys here are plain ASCII).
void Key(std::string* out, std::string_view key, bool first = false) {
  if (!first) out->push_back(',');
  out->push_back('"');
  out->append(key);
  out->append("\":");
}

void AppendStringMap(std::string* out, const std::map<std::string, std::string>& m) {
  out->push_back('{');
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) out->push_back(',');
    first = false;
    AppendString(out, k);
    out->push_back(':');
    AppendString(out, v);
  }
  out->push_back('}');
}

void AppendStringList(std::string* out, const std::vector<std::string>& list) {
  out->push_back('[');
  for (size_t i = 0; i < list.size(); ++i) {
    if (i) out->push_back(',');
    AppendString(out, list[i]);
  }
  out->push_back(']');
}

}  // namespace

// The keys in each object are in the order nlohmann's objects (std::map) keep them: sorted.
std::string ToJsonText(std::string_view thread_id, const SessionResult& s) {
  const ExecutionResult& r = s.execution;
  std::string out;
  out.reserve(400 + r.stdout_text.size() + r.stderr_text.size());
  out.push_back('{');
  Key(&out, "display", true);
  out.push_back('[');
  for (size_t i = 0; i < r.display.size(); ++i) {
    if (i) out.push_back(',');
    out.push_back('{');
    bool first = true;
    for (const auto& [mime, data] : r.display[i].data) {
      if (!first) out.push_back(',');
      first = false;
      AppendString(&out, mime);
      out.push_back(':');
      AppendString(&out, IsBinaryDisplayType(mime) ? Base64Encode(data) : data);
    }
    out.push_back('}');
  }
  out.push_back(']');
  Key(&out, "display_note");
  if (r.display_note.empty()) {
    out.append("null");
  } else {
    AppendString(&out, r.display_note);
  }
  Key(&out, "duration_ms");
  AppendDouble(&out, r.duration_ms);
  Key(&out, "error");
  if (r.error) {
    out.push_back('{');
    Key(&out, "message", true);
    AppendString(&out, r.error->message);
    Key(&out, "traceback");
    AppendString(&out, r.error->traceback);
    Key(&out, "type");
    AppendString(&out, r.error->type);
    out.push_back('}');
  } else {
    out.append("null");
  }
  Key(&out, "exit_code");
  if (r.exit_code) {
    AppendInt(&out, *r.exit_code);
  } else {
    out.append("null");
  }
  Key(&out, "failure");
  if (r.failure != Failure::kNone) {
    out.push_back('{');
    Key(&out, "kind", true);
    AppendString(&out, FailureName(r.failure));
    Key(&out, "message");
    AppendString(&out, r.failure_message);
    out.push_back('}');
  } else {
    out.append("null");
  }
  Key(&out, "ok");
  AppendBool(&out, r.ok);
  Key(&out, "result");
  if (r.result) {
    AppendString(&out, *r.result);
  } else {
    out.append("null");
  }
  Key(&out, "session");
  out.push_back('{');
  Key(&out, "files", true);
  out.push_back('[');
  for (size_t i = 0; i < s.files_changed.size(); ++i) {
    const FileInfo& f = s.files_changed[i];
    if (i) out.push_back(',');
    out.push_back('{');
    Key(&out, "content_type", true);
    AppendString(&out, f.content_type);
    Key(&out, "path");
    AppendString(&out, f.path);
    Key(&out, "size");
    AppendInt(&out, f.size);
    out.push_back('}');
  }
  out.push_back(']');
  Key(&out, "files_deleted");
  AppendStringList(&out, s.files_deleted);
  Key(&out, "files_saved");
  AppendStringList(&out, s.files_saved);
  Key(&out, "not_portable");
  AppendStringMap(&out, s.not_portable);
  Key(&out, "not_restored");
  AppendStringMap(&out, s.not_restored);
  if (!s.pages_unavailable.empty()) {
    Key(&out, "pages_unavailable");
    AppendString(&out, s.pages_unavailable);
  }
  Key(&out, "restored_from");
  AppendString(&out, s.restored_from);
  Key(&out, "saved");
  AppendBool(&out, s.saved);
  Key(&out, "snapshot");
  AppendString(&out, s.snapshot);
  Key(&out, "thread_id");
  AppendString(&out, thread_id);
  Key(&out, "version");
  AppendInt(&out, s.version);
  out.push_back('}');
  Key(&out, "stderr");
  AppendString(&out, r.stderr_text);
  Key(&out, "stderr_truncated");
  AppendBool(&out, r.stderr_truncated);
  Key(&out, "stdout");
  AppendString(&out, r.stdout_text);
  Key(&out, "stdout_truncated");
  AppendBool(&out, r.stdout_truncated);
  out.push_back('}');
  return out;
}

}  // namespace brig
