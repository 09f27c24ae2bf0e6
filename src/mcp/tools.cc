// The MCP tools (tools.h): definitions and handlers.
#include "mcp/tools.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <stdexcept>

#include "brig/file_info.h"
#include "brig/text.h"

namespace brig::mcp {

using nlohmann::json;

namespace {

// ---- Definitions.

constexpr size_t kMaxCodeBytes = 4u << 20;
constexpr int64_t kDefaultReadLimit = 256 << 10;
constexpr int64_t kMaxReadLimit = 4 << 20;

json Str(std::string_view description) { return {{"type", "string"}, {"description", description}}; }

const json kSessionIdArg = {{"type", "string"},
                            {"minLength", 1},
                            {"maxLength", 255},
                            {"description", "The session: its id, as run_python returned it."}};
const json kPathArg = {{"type", "string"},
                       {"minLength", 1},
                       {"maxLength", 4096},
                       {"description", "Absolute path, e.g. /home/user/data.csv (the code's working directory is /home/user)."}};

json FileInfoSchema() {
  return {{"type", "object"},
          {"properties",
           {{"path", {{"type", "string"}}},
            {"size", {{"type", "integer"}, {"description", "bytes"}}},
            {"content_type", {{"type", "string"}}},
            {"modified_at", {{"type", "string"}, {"description", "UTC, ISO 8601"}}}}},
          {"required", {"path", "size", "content_type"}}};
}

json Annotations(std::string_view title, bool read_only, bool destructive, bool idempotent) {
  json a = {{"title", title}, {"readOnlyHint", read_only}, {"openWorldHint", false}};
  if (!read_only) {
    a["destructiveHint"] = destructive;
    a["idempotentHint"] = idempotent;
  }
  return a;
}

json Tool(std::string_view name, std::string_view title, std::string_view description, json properties,
          std::vector<std::string> required, json output_properties, std::vector<std::string> output_required,
          json annotations) {
  json input = {{"type", "object"}, {"properties", std::move(properties)}, {"additionalProperties", false}};
  if (!required.empty()) input["required"] = required;
  json output = {{"type", "object"}, {"properties", std::move(output_properties)}};
  if (!output_required.empty()) output["required"] = output_required;
  return {{"name", name},     {"title", title},           {"description", description},
          {"inputSchema", input}, {"outputSchema", output}, {"annotations", std::move(annotations)}};
}

json MakeDefinitions() {
  json tools = json::array();
  json nullable_string = {{"type", {"string", "null"}}};
  tools.push_back(Tool(
      "run_python", "Run Python",
      "Run Python 3.11 code in a sandboxed, persistent session (no network, no subprocesses; the standard "
      "library only). Variables, functions, imports and files under /home/user and /tmp persist between "
      "calls with the same session_id. Omit session_id to start a new session: its id is returned, pass "
      "it to every later call. Returns stdout, stderr, the repr of the last expression's value, and the "
      "exception with its traceback if the code raised (then isError is true: fix the code and run again). "
      "Images the code saves (png, jpeg, gif, svg) or shows with `import brig; brig.show(obj)` (PNG/JPEG "
      "bytes, SVG or HTML text, dicts as JSON, objects with _repr_png_ etc., matplotlib figures) are "
      "returned as images; other new or changed files as links. Long output is cut in the middle.",
      {{"code", {{"type", "string"}, {"minLength", 1}, {"description", "Python source to run. The value of a final expression is returned, as in a REPL."}}},
       {"session_id", {{"type", "string"}, {"minLength", 1}, {"maxLength", 255},
                       {"description", "Session to run in (from an earlier result). Omit to start a new one."}}},
       {"timeout_s", {{"type", "number"}, {"exclusiveMinimum", 0}, {"maximum", 3600},
                      {"description", "Wall-clock limit for this run, in seconds (default 30)."}}}},
      {"code"},
      {{"session_id", {{"type", "string"}}},
       {"ok", {{"type", "boolean"}, {"description", "true if the code ran to the end without an exception"}}},
       {"stdout", {{"type", "string"}}},
       {"stderr", {{"type", "string"}}},
       {"result", {{"type", {"string", "null"}}, {"description", "repr() of the last expression's value"}}},
       {"error", {{"type", {"object", "null"}},
                  {"properties", {{"type", {{"type", "string"}}}, {"message", {{"type", "string"}}}, {"traceback", {{"type", "string"}}}}}}},
       {"failure", {{"type", {"object", "null"}},
                    {"description", "the sandbox stopped the code: timeout, trap (e.g. memory), exit"},
                    {"properties", {{"kind", {{"type", "string"}}}, {"message", {{"type", "string"}}}}}}},
       {"exit_code", {{"type", {"integer", "null"}}}},
       {"files", {{"type", "array"}, {"items", FileInfoSchema()}, {"description", "files this run created or changed"}}},
       {"deleted_files", {{"type", "array"}, {"items", {{"type", "string"}}}}},
       {"display",
        {{"type", "array"},
         {"description", "what the code showed with brig.show(obj), in order (images also come back as image content)"},
         {"items",
          {{"type", "object"},
           {"properties",
            {{"mime_types", {{"type", "array"}, {"items", {{"type", "string"}}}}},
             {"text", {{"type", {"string", "null"}}}}}}}}}},
       {"duration_ms", {{"type", "number"}}}},
      {"session_id", "ok", "stdout", "stderr", "result", "error", "failure", "files"},
      Annotations("Run Python", false, true, false)));

  tools.push_back(Tool(
      "read_file", "Read file",
      "Read a file of a session. Text comes back as text; an image as an image; other binary content as "
      "base64. Use offset/limit (bytes) to page through a large file.",
      {{"session_id", kSessionIdArg},
       {"path", kPathArg},
       {"offset", {{"type", "integer"}, {"minimum", 0}, {"description", "First byte to read (default 0)."}}},
       {"limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", kMaxReadLimit},
                  {"description", "Bytes to read at most (default 262144)."}}}},
      {"session_id", "path"},
      {{"path", {{"type", "string"}}},
       {"content_type", {{"type", "string"}}},
       {"size", {{"type", "integer"}, {"description", "the whole file's size in bytes"}}},
       {"offset", {{"type", "integer"}}},
       {"encoding", {{"type", "string"}, {"enum", {"utf-8", "base64"}}}},
       {"content", {{"type", "string"}}},
       {"truncated", {{"type", "boolean"}, {"description", "more bytes follow: read again from offset + bytes read"}}}},
      {"path", "content_type", "size", "offset", "encoding", "content", "truncated"},
      Annotations("Read file", true, false, true)));

  tools.push_back(Tool(
      "write_file", "Write file",
      "Create or replace a file of a session (the session is created if it does not exist). The code "
      "run by run_python sees it at the same path. Parent directories are implied.",
      {{"session_id", kSessionIdArg},
       {"path", kPathArg},
       {"content", Str("The file's content.")},
       {"encoding", {{"type", "string"}, {"enum", {"utf-8", "base64"}}, {"description", "How content is encoded (default utf-8)."}}}},
      {"session_id", "path", "content"}, FileInfoSchema()["properties"], {"path", "size", "content_type"},
      Annotations("Write file", false, true, true)));

  tools.push_back(Tool(
      "edit_file", "Edit file",
      "Replace text in a file of a session: old_string must occur exactly once, unless replace_all is true "
      "(then every occurrence is replaced). Include enough context in old_string to make it unique.",
      {{"session_id", kSessionIdArg},
       {"path", kPathArg},
       {"old_string", {{"type", "string"}, {"minLength", 1}, {"description", "Exact text to replace."}}},
       {"new_string", Str("Replacement text.")},
       {"replace_all", {{"type", "boolean"}, {"description", "Replace every occurrence (default false)."}}}},
      {"session_id", "path", "old_string", "new_string"},
      {{"path", {{"type", "string"}}}, {"replacements", {{"type", "integer"}}}}, {"path", "replacements"},
      Annotations("Edit file", false, true, false)));

  json list_output = {{"files", {{"type", "array"}, {"items", FileInfoSchema()}}},
                      {"truncated", {{"type", "boolean"}}}};
  tools.push_back(Tool("list_files", "List files",
                       "List the files of a session (path, size, content type), ordered by path. "
                       "Optional prefix, e.g. /home/user/.",
                       {{"session_id", kSessionIdArg},
                        {"prefix", {{"type", "string"}, {"maxLength", 4096}, {"description", "Only paths starting with this (default: all)."}}}},
                       {"session_id"}, list_output, {"files", "truncated"}, Annotations("List files", true, false, true)));
  tools.push_back(Tool("glob", "Find files",
                       "Find a session's files whose path matches a shell pattern: * and ? within one "
                       "directory, ** across directories, e.g. /home/user/**/*.py.",
                       {{"session_id", kSessionIdArg},
                        {"pattern", {{"type", "string"}, {"minLength", 1}, {"maxLength", 4096}, {"description", "Absolute glob pattern."}}}},
                       {"session_id", "pattern"}, list_output, {"files", "truncated"}, Annotations("Find files", true, false, true)));
  tools.push_back(Tool(
      "grep", "Search files",
      "Search the lines of a session's files with a regular expression (RE2 syntax, as Python's re without "
      "backreferences or lookaround).",
      {{"session_id", kSessionIdArg},
       {"pattern", {{"type", "string"}, {"minLength", 1}, {"maxLength", 4096}, {"description", "Regular expression."}}},
       {"path_glob", {{"type", "string"}, {"maxLength", 4096}, {"description", "Only files matching this glob, e.g. /home/user/**/*.py."}}},
       {"case_insensitive", {{"type", "boolean"}}},
       {"output_mode", {{"type", "string"}, {"enum", {"content", "files_with_matches", "count"}},
                        {"description", "content (matching lines, default), files_with_matches, or count."}}},
       {"max_lines", {{"type", "integer"}, {"minimum", 1}, {"maximum", 10000}, {"description", "Matching lines reported at most (default 500)."}}}},
      {"session_id", "pattern"},
      {{"files", {{"type", "array"},
                  {"items", {{"type", "object"},
                             {"properties", {{"path", {{"type", "string"}}}, {"count", {{"type", "integer"}}},
                                             {"lines", {{"type", "array"}, {"items", {{"type", "object"}, {"properties", {{"number", {{"type", "integer"}}}, {"text", {{"type", "string"}}}}}}}}}}},
                             {"required", {"path", "count"}}}}}},
       {"files_searched", {{"type", "integer"}}},
       {"truncated", {{"type", "boolean"}}},
       {"truncated_reason", {{"type", "string"}}}},
      {"files", "files_searched", "truncated"}, Annotations("Search files", true, false, true)));
  tools.push_back(Tool("delete_file", "Delete file", "Delete a file (or an empty directory) of a session.",
                       {{"session_id", kSessionIdArg}, {"path", kPathArg}}, {"session_id", "path"},
                       {{"path", {{"type", "string"}}}, {"deleted", {{"type", "boolean"}}}}, {"path", "deleted"},
                       Annotations("Delete file", false, true, true)));
  tools.push_back(Tool("reset_session", "Reset session",
                       "Clear a session's Python state (variables, imports) and keep its files. The next "
                       "run_python starts from a fresh interpreter.",
                       {{"session_id", kSessionIdArg}}, {"session_id"},
                       {{"session_id", {{"type", "string"}}}, {"reset", {{"type", "boolean"}}}}, {"session_id", "reset"},
                       Annotations("Reset session", false, true, true)));
  tools.push_back(Tool("fork_session", "Fork session",
                       "Copy a session (its Python state and files) into a new session, to try something "
                       "without changing the original. Returns the new session's id.",
                       {{"session_id", kSessionIdArg},
                        {"new_session_id", {{"type", "string"}, {"minLength", 1}, {"maxLength", 255},
                                            {"description", "Id for the copy (default: a new random one)."}}}},
                       {"session_id"},
                       {{"session_id", {{"type", "string"}, {"description", "the new session"}}}, {"forked_from", {{"type", "string"}}}},
                       {"session_id", "forked_from"}, Annotations("Fork session", false, false, false)));
  tools.push_back(Tool("list_sessions", "List sessions", "List the sessions this client may use, with their expiry and files.",
                       json::object(), {},
                       {{"sessions", {{"type", "array"},
                                      {"items", {{"type", "object"},
                                                 {"properties", {{"session_id", {{"type", "string"}}},
                                                                 {"created_at", {{"type", "string"}}},
                                                                 {"last_accessed", {{"type", "string"}}},
                                                                 {"expires_at", {{"type", "string"}}},
                                                                 {"expired", {{"type", "boolean"}}},
                                                                 {"file_count", {{"type", "integer"}}},
                                                                 {"total_bytes", {{"type", "integer"}}}}},
                                                 {"required", {"session_id", "expires_at", "expired"}}}}}},
                        {"truncated", {{"type", "boolean"}}}},
                       {"sessions", "truncated"}, Annotations("List sessions", true, false, true)));
  return tools;
}

// ---- Arguments.

// A bad argument: becomes a tool error naming it.
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  Args(const json& args, const json& definition) : args_(args) {
    if (args_.is_null()) args_ = json::object();
    if (!args_.is_object()) throw ArgError("'arguments' must be a JSON object");
    const json& props = definition["inputSchema"]["properties"];
    for (auto it = args_.begin(); it != args_.end(); ++it)
      if (!props.contains(it.key())) throw ArgError("unknown argument '" + it.key() + "'");
  }
  std::optional<std::string> String(const char* name, bool required, size_t max_bytes = 4096, bool allow_empty = false) const {
    auto it = args_.find(name);
    if (it == args_.end() || it->is_null()) {
      if (required) throw ArgError(std::string("missing required argument '") + name + "'");
      return std::nullopt;
    }
    if (!it->is_string()) throw ArgError(std::string("argument '") + name + "' must be a string");
    const std::string& s = it->get_ref<const std::string&>();
    if (s.empty() && !allow_empty) throw ArgError(std::string("argument '") + name + "' must not be empty");
    if (s.size() > max_bytes)
      throw ArgError(std::string("argument '") + name + "' is too long (" + std::to_string(s.size()) + " bytes; at most " +
                     std::to_string(max_bytes) + ")");
    return s;
  }
  std::optional<int64_t> Int(const char* name, int64_t min, int64_t max) const {
    auto it = args_.find(name);
    if (it == args_.end() || it->is_null()) return std::nullopt;
    bool whole = it->is_number_integer() || (it->is_number_float() && std::isfinite(it->get<double>()) &&
                                             std::floor(it->get<double>()) == it->get<double>() &&
                                             std::fabs(it->get<double>()) < 9e15);
    if (!whole) throw ArgError(std::string("argument '") + name + "' must be a whole number");
    int64_t v = it->is_number_unsigned() ? (it->get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(it->get<uint64_t>()))
                : it->is_number_integer() ? it->get<int64_t>()
                                          : static_cast<int64_t>(it->get<double>());
    if (v < min || v > max)
      throw ArgError(std::string("argument '") + name + "' must be from " + std::to_string(min) + " to " + std::to_string(max));
    return v;
  }
  std::optional<double> Number(const char* name, double min_exclusive, double max) const {
    auto it = args_.find(name);
    if (it == args_.end() || it->is_null()) return std::nullopt;
    if (!it->is_number()) throw ArgError(std::string("argument '") + name + "' must be a number");
    double v = it->get<double>();
    if (!std::isfinite(v) || v <= min_exclusive || v > max) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "argument '%s' must be more than %g and at most %g", name, min_exclusive, max);
      throw ArgError(buf);
    }
    return v;
  }
  bool Bool(const char* name, bool def) const {
    auto it = args_.find(name);
    if (it == args_.end() || it->is_null()) return def;
    if (!it->is_boolean()) throw ArgError(std::string("argument '") + name + "' must be true or false");
    return it->get<bool>();
  }

 private:
  json args_;
};

// ---- Results.

json TextContent(std::string text) { return {{"type", "text"}, {"text", std::move(text)}}; }

json ToolError(std::string message) {
  return {{"content", json::array({TextContent(std::move(message))})}, {"isError", true}};
}

json StatusError(const Status& s) { return ToolError(s.ToString()); }

json Success(std::string text, json structured) {
  return {{"content", json::array({TextContent(std::move(text))})}, {"structuredContent", std::move(structured)}, {"isError", false}};
}

std::string Iso(int64_t micros) { return FormatTimestamp(micros); }

json FileJson(const FileInfo& f) {
  return {{"path", f.path}, {"size", f.size}, {"content_type", f.content_type}, {"modified_at", Iso(f.modified_at)}};
}

bool IsInlineImage(std::string_view content_type) {
  return content_type == "image/png" || content_type == "image/jpeg" || content_type == "image/gif" ||
         content_type == "image/svg+xml";
}

// Whether `bytes` starts as an image of `content_type` says (the store detects the type from
// the name and the bytes; this keeps a mislabelled file from being sent as an image).
bool LooksLike(std::string_view content_type, std::string_view bytes) {
  if (content_type == "image/png") return bytes.starts_with("\x89PNG\r\n\x1a\n");
  if (content_type == "image/jpeg") return bytes.starts_with("\xff\xd8\xff");
  if (content_type == "image/gif") return bytes.starts_with("GIF87a") || bytes.starts_with("GIF89a");
  if (content_type == "image/svg+xml") return IsValidUtf8(bytes) && bytes.find("<svg") != std::string_view::npos;
  return false;
}

// FailureName's words (brig/sandbox.h), here so that this library needs no sandbox.
std::string KindOf(Failure f) {
  switch (f) {
    case Failure::kNone: return "none";
    case Failure::kTrap: return "trap";
    case Failure::kExit: return "exit";
    case Failure::kTimeout: return "timeout";
    case Failure::kGuestError: return "guest_error";
  }
  return "unknown";
}

std::string RandomHex(size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out;
  while (out.size() < n) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
    out += buf;
  }
  return out.substr(0, n);
}

// The session to use, checked against the caller. Throws ArgError.
std::string NeedSession(const Args& a, const Caller& caller, bool writes) {
  std::string id = *a.String("session_id", true, 255);
  if (!caller.MayUse(id)) throw ArgError("this client may not use session '" + id + "'");
  if (writes && caller.read_only) throw ArgError("this client is read-only: it may not change session '" + id + "'");
  return id;
}

std::string NewSessionId(const Caller& caller) {
  std::string id = caller.new_session_prefix + RandomHex(16);
  if (!caller.MayUse(id))
    throw ArgError("this client may only use some sessions: give session_id (one of those it may use)");
  return id;
}

size_t Utf8Start(std::string_view s, size_t i) {
  while (i > 0 && i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

// ---- Handlers.

json RunPython(Backend& backend, const Options& options, const Caller& caller, const Args& a) {
  std::string code = *a.String("code", true, kMaxCodeBytes);
  auto timeout = a.Number("timeout_s", 0, 3600);
  std::string id;
  if (auto given = a.String("session_id", false, 255)) {
    id = *given;
    if (!caller.MayUse(id)) throw ArgError("this client may not use session '" + id + "'");
  } else {
    id = NewSessionId(caller);
  }
  if (caller.read_only) throw ArgError("this client is read-only: it may not run code");
  auto run = backend.Execute(id, code, timeout);
  if (!run.ok()) return StatusError(run.status().WithPrefix("session '" + id + "': "));
  const SessionResult& sr = run.value();
  const ExecutionResult& r = sr.execution;

  std::string out = CapText(r.stdout_text, options.max_text_bytes, "stdout");
  std::string err = CapText(r.stderr_text, options.max_text_bytes, "stderr");
  json structured = {{"session_id", id},
                     {"ok", r.ok},
                     {"stdout", out},
                     {"stderr", err},
                     {"result", r.result ? json(CapText(*r.result, options.max_text_bytes, "the result")) : json(nullptr)},
                     {"error", nullptr},
                     {"failure", nullptr},
                     {"exit_code", r.exit_code ? json(*r.exit_code) : json(nullptr)},
                     {"files", json::array()},
                     {"deleted_files", sr.files_deleted},
                     {"duration_ms", r.duration_ms}};
  if (r.error)
    structured["error"] = {{"type", r.error->type},
                           {"message", CapText(r.error->message, options.max_text_bytes, "the message")},
                           {"traceback", CapText(r.error->traceback, options.max_text_bytes, "the traceback")}};
  if (r.failure != Failure::kNone)
    structured["failure"] = {{"kind", KindOf(r.failure)}, {"message", r.failure_message}};

  // The text a model reads first.
  std::string text;
  auto section = [&text](std::string_view name, std::string_view body) {
    if (body.empty()) return;
    text += "[";
    text += name;
    text += "]\n";
    text += body;
    if (body.back() != '\n') text += "\n";
  };
  section("stdout", out);
  // The guest prints the traceback to stderr too: show it once, under [error].
  std::string_view err_shown = err;
  if (r.error && !r.error->traceback.empty() && err_shown.ends_with(structured["error"]["traceback"].get<std::string>()))
    err_shown.remove_suffix(structured["error"]["traceback"].get<std::string>().size());
  section("stderr", err_shown);
  if (r.result) section("result", structured["result"].get<std::string>());
  if (r.error) section("error", structured["error"]["traceback"].get<std::string>().empty()
                                    ? r.error->type + ": " + r.error->message
                                    : structured["error"]["traceback"].get<std::string>());
  if (r.failure != Failure::kNone)
    section("failure", KindOf(r.failure) + ": " + r.failure_message +
                           " (nothing this run did was kept; the session is as before it)");
  if (!sr.saved && r.failure == Failure::kNone) section("warning", "the session was not saved");

  json extra = json::array();
  size_t images = 0;
  // What the code showed with brig.show(): images as image content, the rest as text (the
  // richest text type first), each in the structured result by its MIME types.
  structured["display"] = json::array();
  std::string display_text;
  for (const DisplayOutput& shown : r.display) {
    json types = json::array();
    for (const auto& [mime, data] : shown.data) types.push_back(mime);
    json item = {{"mime_types", std::move(types)}, {"text", nullptr}};
    bool inlined = false;
    for (const char* kind : {"image/png", "image/jpeg", "image/gif", "image/svg+xml"}) {
      auto it = shown.data.find(kind);
      if (it == shown.data.end() || inlined) continue;
      if (static_cast<int64_t>(it->second.size()) <= options.max_image_bytes && images < options.max_images) {
        extra.push_back({{"type", "image"}, {"data", Base64Encode(it->second)}, {"mimeType", kind}});
        ++images;
        inlined = true;
      }
    }
    for (const char* kind : {"text/markdown", "text/plain", "application/json", "text/html", "text/latex"}) {
      auto it = shown.data.find(kind);
      if (it == shown.data.end()) continue;
      item["text"] = CapText(it->second, options.max_text_bytes, "the display text");
      if (!inlined) display_text += item["text"].get<std::string>() + "\n";
      break;
    }
    if (!inlined && item["text"].is_null()) display_text += "(an image past the limit of images per result)\n";
    structured["display"].push_back(std::move(item));
  }
  if (!r.display_note.empty()) display_text += r.display_note + "\n";
  section("display", display_text);
  if (!sr.files_saved.empty()) {
    std::map<std::string, FileInfo> infos;
    auto listed = backend.files().List(id, "");
    if (listed.ok())
      for (auto& f : listed.value()) infos.emplace(f.path, std::move(f));
    std::string files_text;
    for (const std::string& path : sr.files_saved) {
      auto it = infos.find(path);
      if (it == infos.end() || it->second.is_directory()) continue;
      const FileInfo& f = it->second;
      json fj = FileJson(f);
      files_text += f.path + " (" + f.content_type + ", " + std::to_string(f.size) + " bytes)\n";
      bool inlined = false;
      if (IsInlineImage(f.content_type) && f.size <= options.max_image_bytes && images < options.max_images) {
        auto data = backend.files().Read(id, f.path);
        if (data.ok() && LooksLike(f.content_type, data.value().content)) {
          extra.push_back({{"type", "image"}, {"data", Base64Encode(data.value().content)}, {"mimeType", f.content_type}});
          ++images;
          inlined = true;
        }
      }
      std::string uri = caller.file_link ? caller.file_link(id, f.path) : "";
      if (uri.empty()) uri = FileUri(id, f.path);
      fj["uri"] = uri;
      if (!inlined) {
        std::string name = f.path.substr(f.path.rfind('/') + 1);
        extra.push_back({{"type", "resource_link"}, {"uri", uri}, {"name", name}, {"title", f.path},
                         {"mimeType", f.content_type}, {"size", f.size}});
      }
      structured["files"].push_back(std::move(fj));
    }
    section("files written", files_text);
  }
  if (!sr.files_deleted.empty()) {
    std::string deleted;
    for (const auto& p : sr.files_deleted) deleted += p + "\n";
    section("files deleted", deleted);
  }
  if (text.empty()) text = r.ok ? "(no output)\n" : "";
  text += "[session_id] " + id + "\n";

  json result = {{"content", json::array({TextContent(std::move(text))})},
                 {"structuredContent", std::move(structured)},
                 {"isError", !r.ok}};
  for (auto& e : extra) result["content"].push_back(std::move(e));
  return result;
}

json ReadFile(Backend& backend, const Options& options, const Caller& caller, const Args& a) {
  std::string id = NeedSession(a, caller, false);
  std::string path = *a.String("path", true);
  int64_t offset = a.Int("offset", 0, INT64_MAX / 2).value_or(0);
  int64_t limit = a.Int("limit", 1, kMaxReadLimit).value_or(kDefaultReadLimit);
  auto data = backend.files().Read(id, path, offset, limit);
  if (!data.ok()) return StatusError(data.status());
  const FileData& d = data.value();
  bool truncated = offset + static_cast<int64_t>(d.content.size()) < d.info.size;
  bool utf8 = IsValidUtf8(d.content);
  json structured = {{"path", d.info.path},
                     {"content_type", d.info.content_type},
                     {"size", d.info.size},
                     {"offset", offset},
                     {"encoding", utf8 ? "utf-8" : "base64"},
                     {"content", utf8 ? d.content : Base64Encode(d.content)},
                     {"truncated", truncated}};
  json result = {{"content", json::array()}, {"structuredContent", structured}, {"isError", false}};
  std::string note;
  if (truncated)
    note = "\n[brig: bytes " + std::to_string(offset) + ".." + std::to_string(offset + int64_t(d.content.size())) + " of " +
           std::to_string(d.info.size) + "; read on with offset=" + std::to_string(offset + int64_t(d.content.size())) + "]\n";
  if (IsInlineImage(d.info.content_type) && offset == 0 && !truncated && LooksLike(d.info.content_type, d.content)) {
    result["content"].push_back(TextContent(d.info.path + " (" + d.info.content_type + ", " + std::to_string(d.info.size) + " bytes)"));
    result["content"].push_back({{"type", "image"}, {"data", Base64Encode(d.content)}, {"mimeType", d.info.content_type}});
  } else if (utf8) {
    result["content"].push_back(TextContent(CapText(d.content, std::max<size_t>(options.max_text_bytes, limit), "the file") + note));
  } else {
    result["content"].push_back(TextContent("[brig: " + d.info.path + " is binary (" + d.info.content_type +
                                            "); its bytes in base64:]\n" + structured["content"].get<std::string>() + note));
  }
  return result;
}

json WriteFile(Backend& backend, const Options&, const Caller& caller, const Args& a) {
  std::string id = NeedSession(a, caller, true);
  std::string path = *a.String("path", true);
  std::string encoding = a.String("encoding", false, 16).value_or("utf-8");
  std::string content = *a.String("content", true, static_cast<size_t>(kMaxFileBytes) * 4 / 3 + 4, /*allow_empty=*/true);
  if (encoding == "base64") {
    auto decoded = Base64Decode(content);
    if (!decoded) throw ArgError("argument 'content' is not valid base64 (standard alphabet, '=' padding, no line breaks)");
    content = std::move(*decoded);
  } else if (encoding != "utf-8") {
    throw ArgError("argument 'encoding' must be \"utf-8\" or \"base64\"");
  }
  auto info = backend.files().Write(id, path, std::move(content));
  if (!info.ok()) return StatusError(info.status());
  const FileInfo& f = info.value();
  return Success("wrote " + f.path + " (" + f.content_type + ", " + std::to_string(f.size) + " bytes) in session " + id,
                 FileJson(f));
}

json EditFile(Backend& backend, const Options&, const Caller& caller, const Args& a) {
  std::string id = NeedSession(a, caller, true);
  std::string path = *a.String("path", true);
  std::string old_text = *a.String("old_string", true, size_t{kMaxFileBytes});
  std::string new_text = *a.String("new_string", true, size_t{kMaxFileBytes}, true);
  bool all = a.Bool("replace_all", false);
  auto n = backend.files().Edit(id, path, old_text, new_text, all);
  if (!n.ok()) return StatusError(n.status());
  return Success("replaced " + std::to_string(n.value()) + " occurrence(s) in " + path,
                 {{"path", path}, {"replacements", n.value()}});
}

json FileListResult(const std::vector<FileInfo>& files, const Options& options, std::string_view what) {
  json list = json::array();
  std::string text;
  size_t n = std::min(files.size(), options.max_entries);
  for (size_t i = 0; i < n; ++i) {
    list.push_back(FileJson(files[i]));
    text += files[i].path + "  " + std::to_string(files[i].size) + " bytes  " + files[i].content_type + "\n";
  }
  bool truncated = files.size() > n;
  if (truncated) text += "[brig: " + std::to_string(files.size() - n) + " more not shown]\n";
  if (files.empty()) text = std::string("no ") + std::string(what) + "\n";
  return Success(std::move(text), {{"files", std::move(list)}, {"truncated", truncated}});
}

json ListFiles(Backend& backend, const Options& options, const Caller& caller, const Args& a) {
  std::string id = NeedSession(a, caller, false);
  std::string prefix = a.String("prefix", false, 4096, true).value_or("");
  auto files = backend.files().List(id, prefix);
  if (!files.ok()) return StatusError(files.status());
  return FileListResult(files.value(), options, "files");
}

json GlobFiles(Backend& backend, const Options& options, const Caller& caller, const Args& a) {
  std::string id = NeedSession(a, caller, false);
  std::string pattern = *a.String("pattern", true);
  auto files = backend.files().Glob(id, pattern);
  if (!files.ok()) return StatusError(files.status());
  return FileListResult(files.value(), options, "files match");
}

json GrepFiles(Backend& backend, const Options& options, const Caller& caller, const Args& a) {
  std::string id = NeedSession(a, caller, false);
  std::string pattern = *a.String("pattern", true);
  GrepOptions g;
  g.path_glob = a.String("path_glob", false, 4096, true).value_or("");
  g.case_insensitive = a.Bool("case_insensitive", false);
  std::string mode = a.String("output_mode", false, 32).value_or("content");
  if (mode == "content") g.mode = GrepMode::kContent;
  else if (mode == "files_with_matches") g.mode = GrepMode::kFilesWithMatches;
  else if (mode == "count") g.mode = GrepMode::kCount;
  else throw ArgError("argument 'output_mode' must be \"content\", \"files_with_matches\" or \"count\"");
  g.max_lines = a.Int("max_lines", 1, 10000).value_or(500);
  g.max_line_bytes = 500;
  auto found = backend.files().Grep(id, pattern, g);
  if (!found.ok()) return StatusError(found.status());
  const GrepResult& r = found.value();
  json files = json::array();
  std::string text;
  for (const auto& f : r.files) {
    json fj = {{"path", f.path}, {"count", f.count}};
    if (g.mode == GrepMode::kContent) {
      json lines = json::array();
      for (const auto& l : f.lines) {
        lines.push_back({{"number", l.number}, {"text", l.text}});
        text += f.path + ":" + std::to_string(l.number) + ":" + l.text + "\n";
      }
      if (f.binary) text += f.path + ": binary file matches\n";
      fj["lines"] = std::move(lines);
    } else if (g.mode == GrepMode::kCount) {
      text += f.path + ":" + std::to_string(f.count) + "\n";
    } else {
      text += f.path + "\n";
    }
    files.push_back(std::move(fj));
  }
  if (r.files.empty()) text = "no matches (" + std::to_string(r.files_searched) + " files searched)\n";
  if (r.truncated) text += "[brig: search stopped early: " + r.truncated_reason + "]\n";
  text = CapText(text, options.max_text_bytes, "the matches");
  return Success(std::move(text), {{"files", std::move(files)},
                                   {"files_searched", r.files_searched},
                                   {"truncated", r.truncated},
                                   {"truncated_reason", r.truncated_reason}});
}

json DeleteFile(Backend& backend, const Options&, const Caller& caller, const Args& a) {
  std::string id = NeedSession(a, caller, true);
  std::string path = *a.String("path", true);
  if (Status st = backend.files().Delete(id, path); !st.ok()) return StatusError(st);
  return Success("deleted " + path, {{"path", path}, {"deleted", true}});
}

json ResetSession(Backend& backend, const Options&, const Caller& caller, const Args& a) {
  std::string id = NeedSession(a, caller, true);
  if (Status st = backend.Reset(id); !st.ok()) return StatusError(st);
  return Success("session " + id + " reset: its variables are gone, its files kept", {{"session_id", id}, {"reset", true}});
}

json ForkSession(Backend& backend, const Options&, const Caller& caller, const Args& a) {
  std::string id = NeedSession(a, caller, false);
  if (caller.read_only) throw ArgError("this client is read-only: it may not make sessions");
  std::string dst;
  if (auto given = a.String("new_session_id", false, 255)) {
    dst = *given;
    if (!caller.MayUse(dst)) throw ArgError("this client may not use session '" + dst + "'");
  } else {
    dst = NewSessionId(caller);
  }
  auto forked = backend.manager().Fork(id, dst);
  if (!forked.ok()) return StatusError(forked.status());
  return Success("forked session " + id + " into " + dst + " (use session_id " + dst + " for the copy)",
                 {{"session_id", dst}, {"forked_from", id}});
}

json ListSessions(Backend& backend, const Options& options, const Caller& caller, const Args&) {
  auto list = backend.manager().List();
  if (!list.ok()) return StatusError(list.status());
  json sessions = json::array();
  std::string text;
  bool truncated = false;
  for (const auto& s : list.value()) {
    if (!caller.MayUse(s.thread_id)) continue;
    if (sessions.size() >= options.max_entries) {
      truncated = true;
      break;
    }
    bool expired = backend.manager().IsExpired(s);
    sessions.push_back({{"session_id", s.thread_id},
                        {"created_at", Iso(s.created_at)},
                        {"last_accessed", Iso(s.last_accessed)},
                        {"expires_at", Iso(s.expires_at)},
                        {"expired", expired},
                        {"file_count", s.file_count},
                        {"total_bytes", s.total_bytes}});
    text += s.thread_id + "  last used " + Iso(s.last_accessed) + (expired ? "  EXPIRED" : "  expires " + Iso(s.expires_at)) +
            "  " + std::to_string(s.file_count) + " files\n";
  }
  if (sessions.empty()) text = "no sessions\n";
  if (truncated) text += "[brig: more sessions not shown]\n";
  return Success(std::move(text), {{"sessions", std::move(sessions)}, {"truncated", truncated}});
}

using Handler = json (*)(Backend&, const Options&, const Caller&, const Args&);

const std::map<std::string, Handler, std::less<>>& Handlers() {
  static const auto* h = new std::map<std::string, Handler, std::less<>>{
      {"run_python", RunPython},     {"read_file", ReadFile},         {"write_file", WriteFile},
      {"edit_file", EditFile},       {"list_files", ListFiles},       {"glob", GlobFiles},
      {"grep", GrepFiles},           {"delete_file", DeleteFile},     {"reset_session", ResetSession},
      {"fork_session", ForkSession}, {"list_sessions", ListSessions},
  };
  return *h;
}

std::string PercentEncode(std::string_view s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(s[i + 2])))
      return std::nullopt;
    out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  return out;
}

constexpr std::string_view kUriPrefix = "brig://sessions/";

}  // namespace

const json& ToolDefinitions() {
  static const json* defs = new json(MakeDefinitions());
  return *defs;
}

bool HasTool(std::string_view name) { return Handlers().find(name) != Handlers().end(); }

json CallTool(Backend& backend, const Options& options, const Caller& caller, std::string_view name, const json& arguments) {
  auto it = Handlers().find(name);
  const json* def = nullptr;
  for (const auto& t : ToolDefinitions())
    if (t["name"] == name) def = &t;
  if (it == Handlers().end() || !def) return ToolError("unknown tool '" + std::string(name) + "'");
  try {
    Args args(arguments, *def);
    return it->second(backend, options, caller, args);
  } catch (const ArgError& e) {
    return ToolError(std::string(name) + ": " + e.what());
  } catch (const std::exception& e) {
    // A bug or an allocation failure: the model gets a message, the server goes on.
    return ToolError(std::string(name) + ": internal error: " + e.what());
  }
}

std::string FileUri(std::string_view thread_id, std::string_view path) {
  return std::string(kUriPrefix) + PercentEncode(thread_id, false) + "/files" + PercentEncode(path, true);
}

StatusOr<json> ReadResource(Backend& backend, const Options& options, const Caller& caller, std::string_view uri) {
  if (!uri.starts_with(kUriPrefix)) return Status::InvalidArgument("not a brig:// file URI: " + std::string(uri.substr(0, 200)));
  std::string_view rest = uri.substr(kUriPrefix.size());
  size_t slash = rest.find("/files/");
  if (slash == std::string_view::npos) return Status::InvalidArgument("expected brig://sessions/{id}/files/{path}");
  auto id = PercentDecode(rest.substr(0, slash));
  auto path = PercentDecode(rest.substr(slash + 6));
  if (!id || !path) return Status::InvalidArgument("malformed percent-escape in the URI");
  if (!caller.MayUse(*id)) return Status::InvalidArgument("this client may not use session '" + *id + "'");
  auto data = backend.files().Read(*id, *path, 0, kMaxReadLimit);
  if (!data.ok()) return data.status();
  const FileData& d = data.value();
  json content = {{"uri", std::string(uri)}, {"mimeType", d.info.content_type}};
  if (IsValidUtf8(d.content)) content["text"] = CapText(d.content, std::max<size_t>(options.max_text_bytes, kMaxReadLimit), "the file");
  else content["blob"] = Base64Encode(d.content);
  return json{{"contents", json::array({std::move(content)})}};
}

std::string CapText(std::string_view text, size_t max_bytes, std::string_view what) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t head = Utf8Start(text, max_bytes * 2 / 3);
  size_t tail = Utf8Start(text, text.size() - max_bytes / 3);
  if (tail < head) tail = head;
  std::string out(text.substr(0, head));
  out += "\n[brig: " + std::to_string(tail - head) + " bytes of " + std::string(what) + " cut here (" +
         std::to_string(text.size()) + " in all)]\n";
  out += text.substr(tail);
  return out;
}

}  // namespace brig::mcp
