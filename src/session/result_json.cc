// ToJson / SessionResultFromJson (include/brig/result_json.h).
#include "brig/result_json.h"

#include <cmath>
#include <limits>
#include <optional>

#include "brig/text.h"
#include "sandbox/display.h"

namespace brig {
namespace {

using json = nlohmann::json;

constexpr Failure kFailures[] = {Failure::kTrap, Failure::kExit, Failure::kTimeout, Failure::kGuestError};

// Checked reads of one object's fields; the first fault is kept, with the field's path.
class Reader {
 public:
  Reader(const json& j, std::string path, std::string* fault) : j_(j), path_(std::move(path)), fault_(fault) {
    if (!j_.is_object()) Fail("", "an object");
  }
  bool ok() const { return fault_->empty(); }

  // The field, if present and of the type `is` checks; else a fault (unless `optional`).
  const json* Field(const char* key, bool (json::*is)() const noexcept, const char* what, bool nullable = false) {
    if (!ok() || !j_.is_object()) return nullptr;
    auto it = j_.find(key);
    if (it == j_.end()) return Fail(key, what), nullptr;
    if (nullable && it->is_null()) return nullptr;
    if (!((*it).*is)()) return Fail(key, what), nullptr;
    return &*it;
  }
  void String(const char* key, std::string* out) {
    if (const json* v = Field(key, &json::is_string, "a string")) *out = v->get<std::string>();
  }
  void Bool(const char* key, bool* out) {
    if (const json* v = Field(key, &json::is_boolean, "a boolean")) *out = v->get<bool>();
  }
  void Int64(const char* key, int64_t* out) {
    const json* v = Field(key, &json::is_number_integer, "an integer");
    if (!v) return;
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return Fail(key, "an int64");
    *out = v->get<int64_t>();
  }
  void StringMap(const char* key, std::map<std::string, std::string>* out) {
    const json* v = Field(key, &json::is_object, "an object of strings");
    if (!v) return;
    for (const auto& [name, why] : v->items()) {
      if (!why.is_string()) return Fail(key, "an object of strings");
      (*out)[name] = why.get<std::string>();
    }
  }
  void StringList(const char* key, std::vector<std::string>* out) {
    const json* v = Field(key, &json::is_array, "an array of strings");
    if (!v) return;
    for (const json& e : *v) {
      if (!e.is_string()) return Fail(key, "an array of strings");
      out->push_back(e.get<std::string>());
    }
  }
  void Fail(const char* key, const char* what) {
    if (!ok()) return;
    std::string where = path_ + (path_.empty() || !*key ? "" : ".") + key;
    *fault_ = (where.empty() ? std::string("the result") : where) + " is not " + what;
  }

 private:
  const json& j_;
  std::string path_;
  std::string* fault_;
};

}  // namespace

json ToJson(const ExecutionResult& r) {
  json j;
  j["ok"] = r.ok;
  j["stdout"] = r.stdout_text;
  j["stderr"] = r.stderr_text;
  j["stdout_truncated"] = r.stdout_truncated;
  j["stderr_truncated"] = r.stderr_truncated;
  j["result"] = r.result ? json(*r.result) : json(nullptr);
  if (r.error) {
    j["error"] = {{"type", r.error->type}, {"message", r.error->message}, {"traceback", r.error->traceback}};
  } else {
    j["error"] = nullptr;
  }
  j["exit_code"] = r.exit_code ? json(*r.exit_code) : json(nullptr);
  if (r.failure != Failure::kNone) {
    j["failure"] = {{"kind", std::string(FailureName(r.failure))}, {"message", r.failure_message}};
  } else {
    j["failure"] = nullptr;
  }
  j["duration_ms"] = r.duration_ms;
  json display = json::array();
  for (const DisplayOutput& out : r.display) {
    json bundle = json::object();
    for (const auto& [mime, data] : out.data) bundle[mime] = IsBinaryDisplayType(mime) ? Base64Encode(data) : data;
    display.push_back(std::move(bundle));
  }
  j["display"] = std::move(display);
  j["display_note"] = r.display_note.empty() ? json(nullptr) : json(r.display_note);
  return j;
}

json ToJson(std::string_view thread_id, const SessionResult& s) {
  json j = ToJson(s.execution);
  json session = {{"thread_id", thread_id},         {"version", s.version},
                  {"saved", s.saved},               {"restored_from", s.restored_from},
                  {"not_portable", s.not_portable}, {"not_restored", s.not_restored},
                  {"files_saved", s.files_saved},   {"files_deleted", s.files_deleted},
                  {"snapshot", s.snapshot}};
  json files = json::array();
  for (const FileInfo& f : s.files_changed)
    files.push_back({{"path", f.path}, {"size", f.size}, {"content_type", f.content_type}});
  session["files"] = std::move(files);
  // Why the session was saved by its portable snapshot alone (a cold start, no image).
  if (!s.pages_unavailable.empty()) session["pages_unavailable"] = s.pages_unavailable;
  j["session"] = std::move(session);
  return j;
}

StatusOr<SessionResult> SessionResultFromJson(const json& j, std::string* thread_id) {
  SessionResult s;
  ExecutionResult& r = s.execution;
  std::string fault;
  Reader top(j, "", &fault);
  top.Bool("ok", &r.ok);
  top.String("stdout", &r.stdout_text);
  top.String("stderr", &r.stderr_text);
  top.Bool("stdout_truncated", &r.stdout_truncated);
  top.Bool("stderr_truncated", &r.stderr_truncated);
  if (const json* v = top.Field("result", &json::is_string, "a string or null", true)) r.result = v->get<std::string>();
  if (const json* e = top.Field("error", &json::is_object, "an object or null", true)) {
    PythonError error;
    Reader er(*e, "error", &fault);
    er.String("type", &error.type);
    er.String("message", &error.message);
    er.String("traceback", &error.traceback);
    r.error = std::move(error);
  }
  if (const json* v = top.Field("exit_code", &json::is_number_integer, "an integer or null", true)) {
    bool fits = v->is_number_unsigned() ? v->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int>::max())
                                        : v->get<int64_t>() >= std::numeric_limits<int>::min() &&
                                              v->get<int64_t>() <= std::numeric_limits<int>::max();
    if (fits) {
      r.exit_code = static_cast<int>(v->get<int64_t>());
    } else {
      top.Fail("exit_code", "an int");
    }
  }
  if (const json* f = top.Field("failure", &json::is_object, "an object or null", true)) {
    Reader fr(*f, "failure", &fault);
    std::string kind;
    fr.String("kind", &kind);
    fr.String("message", &r.failure_message);
    std::optional<Failure> known;
    for (Failure candidate : kFailures) {
      if (FailureName(candidate) == kind) known = candidate;
    }
    if (known) {
      r.failure = *known;
    } else {
      fr.Fail("kind", "a failure kind");
    }
  }
  if (const json* d = top.Field("duration_ms", &json::is_number, "a number")) {
    r.duration_ms = d->get<double>();
    if (!std::isfinite(r.duration_ms) || r.duration_ms < 0) top.Fail("duration_ms", "a duration");
  }
  // The display outputs: the shape is required, then the guest's checks run again
  // (allowlist, encodings, bounds), dropping what fails them.
  if (const json* d = top.Field("display", &json::is_array, "an array of objects of strings")) {
    for (const json& bundle : *d) {
      bool strings = bundle.is_object();
      if (strings)
        for (const auto& item : bundle.items()) strings = strings && item.value().is_string();
      if (!strings) top.Fail("display", "an array of objects of strings");
    }
    if (top.ok()) sandbox::ReadGuestDisplay(j, &r);
  }
  if (const json* note = top.Field("display_note", &json::is_string, "a string or null", true))
    r.display_note = note->get<std::string>() + (r.display_note.empty() ? "" : "; " + r.display_note);
  if (const json* session = top.Field("session", &json::is_object, "an object")) {
    Reader sr(*session, "session", &fault);
    std::string id;
    sr.String("thread_id", &id);
    sr.Int64("version", &s.version);
    sr.Bool("saved", &s.saved);
    sr.String("restored_from", &s.restored_from);
    sr.StringMap("not_portable", &s.not_portable);
    sr.StringMap("not_restored", &s.not_restored);
    sr.StringList("files_saved", &s.files_saved);
    sr.StringList("files_deleted", &s.files_deleted);
    if (const json* files = sr.Field("files", &json::is_array, "an array of files")) {
      for (const json& f : *files) {
        FileInfo info;
        static const json kNotObject = nullptr;  // the reader faults on it
        Reader fr(f.is_object() ? f : kNotObject, "session.files[]", &fault);
        fr.String("path", &info.path);
        fr.Int64("size", &info.size);
        fr.String("content_type", &info.content_type);
        s.files_changed.push_back(std::move(info));
      }
    }
    sr.String("snapshot", &s.snapshot);
    if (session->contains("pages_unavailable")) sr.String("pages_unavailable", &s.pages_unavailable);
    if (thread_id) *thread_id = std::move(id);
  }
  if (!fault.empty()) return Status::InvalidArgument("malformed execution result: " + fault);
  return s;
}

nlohmann::json SessionInfoToJson(const SessionManager& m, const SessionInfo& s) {
  const SessionQuotas q = m.EffectiveQuotas(s);
  nlohmann::json quotas = nlohmann::json::object();
  if (q.max_files) quotas["max_files"] = *q.max_files;
  if (q.max_total_bytes) quotas["max_total_bytes"] = *q.max_total_bytes;
  if (q.max_file_bytes) quotas["max_file_bytes"] = *q.max_file_bytes;
  return {{"thread_id", s.thread_id},
          {"created_at", FormatTimestamp(s.created_at)},
          {"last_accessed", FormatTimestamp(s.last_accessed)},
          {"expires_at", FormatTimestamp(s.expires_at)},
          {"expired", m.IsExpired(s)},
          {"metadata", s.metadata},
          {"file_count", s.file_count},
          {"total_bytes", s.total_bytes},
          {"quotas", std::move(quotas)}};
}

nlohmann::json ToJson(const InstalledPackage& p) {
  return {{"name", p.name}, {"version", p.version}, {"dist_info", p.dist_info}, {"files", p.files}, {"bytes", p.bytes}};
}

nlohmann::json ToJson(const InstallResult& r) {
  nlohmann::json j = ToJson(r.package);
  j["replaced_version"] = r.replaced_version.empty() ? nlohmann::json() : nlohmann::json(r.replaced_version);
  j["notes"] = r.notes;
  j["site_packages"] = kSitePackages;
  return j;
}

}  // namespace brig
