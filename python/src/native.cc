// brig._native: the engine in the Python process (CPython C API, no pybind11).
//
// A thin core under the pure-Python package (python/brig/): the types Sandbox (one
// in-process interpreter: brig::Sandbox), Sessions (persistent sessions over a store:
// brig::Sessions with its SessionManager and FileService) and ExecutionResult. It includes
// only the public API (include/brig/). Errors are raised through the factory the package
// registers (_configure): brig.errors maps a status code to its exception class.
//
// The GIL is released around every call into the engine; a Sandbox's own mutex serialises
// calls on it (brig::Sandbox is used by one thread at a time), taken after the GIL is given
// up so that a thread waiting for it never holds the GIL. Sessions is thread-safe itself.
//
// Values from Python (code, paths, snapshot bytes) are checked here or by the API; snapshot
// bytes handed to Sandbox.restore are untrusted: every length is bounds-checked.
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <time.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "brig/files.h"
#include "brig/sandbox.h"
#include "brig/session_manager.h"
#include "brig/sessions.h"
#include "brig/status.h"
#include "brig/text.h"

namespace {

// ---- Errors: brig.errors._from_status(code, message) makes the exception.

PyObject* g_error_factory = nullptr;  // set by _configure
PyObject* g_python_error = nullptr;   // brig.PythonError(type, message, traceback)
PyObject* g_json_loads = nullptr;     // json.loads

const char* StatusCode(const brig::Status& s) {
  if (s.IsInvalidArgument()) return "invalid_argument";
  if (s.IsNotFound()) return "not_found";
  if (s.IsAlreadyExists()) return "already_exists";
  if (s.IsResourceExhausted()) return "resource_exhausted";
  if (s.IsConflict()) return "conflict";
  if (s.IsUnavailable()) return "unavailable";
  if (s.IsFailedPrecondition()) return "failed_precondition";
  if (s.IsDeadlineExceeded()) return "deadline_exceeded";
  return "internal";
}

// Sets the Python exception for `s` (not ok) and returns nullptr.
PyObject* RaiseStatus(const brig::Status& s) {
  if (!g_error_factory) {
    PyErr_SetString(PyExc_RuntimeError, s.ToString().c_str());
    return nullptr;
  }
  PyObject* exc = PyObject_CallFunction(g_error_factory, "sN", StatusCode(s),
                                        PyUnicode_DecodeUTF8(s.message().data(),
                                                             static_cast<Py_ssize_t>(s.message().size()), "replace"));
  if (!exc) return nullptr;
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
  Py_DECREF(exc);
  return nullptr;
}

// Guest text may be any bytes: invalid UTF-8 becomes U+FFFD.
PyObject* Text(std::string_view s) {
  if (s.empty()) return PyUnicode_New(0, 0);  // the shared empty string
  return PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
}

PyObject* Bytes(std::string_view s) { return PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size())); }

// A UTF-8 view of a str argument (valid while the object lives), or nullopt with an error.
std::optional<std::string_view> Utf8(PyObject* o, const char* what) {
  if (!PyUnicode_Check(o)) {
    PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", what, Py_TYPE(o)->tp_name);
    return std::nullopt;
  }
  Py_ssize_t n = 0;
  const char* p = PyUnicode_AsUTF8AndSize(o, &n);
  if (!p) return std::nullopt;
  return std::string_view(p, static_cast<size_t>(n));
}

PyObject* JsonToPython(const nlohmann::json& j) {
  std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return PyUnicode_FromStringAndSize(text.data(), static_cast<Py_ssize_t>(text.size()));
}

// ---- ExecutionResult

struct ResultObject {
  PyObject_HEAD
  PyObject* stdout_text;
  PyObject* stderr_text;
  PyObject* result;  // str (repr of the last expression) or None
  PyObject* error;   // brig.PythonError or None
  PyObject* exit_code;
  PyObject* failure;  // "timeout", "trap", "exit", "guest_error" or None
  PyObject* failure_message;
  PyObject* session;  // dict for a session execution, else None
  PyObject* display;       // list of {MIME type: bytes | str} (brig.show() in the guest)
  PyObject* display_note;  // str or None
  double duration_ms;
  char ok;
  char stdout_truncated;
  char stderr_truncated;
};

PyTypeObject ResultType = {PyVarObject_HEAD_INIT(nullptr, 0)};

void ResultDealloc(ResultObject* self) {
  Py_XDECREF(self->stdout_text);
  Py_XDECREF(self->stderr_text);
  Py_XDECREF(self->result);
  Py_XDECREF(self->error);
  Py_XDECREF(self->exit_code);
  Py_XDECREF(self->failure);
  Py_XDECREF(self->failure_message);
  Py_XDECREF(self->session);
  Py_XDECREF(self->display);
  Py_XDECREF(self->display_note);
  Py_TYPE(self)->tp_free(reinterpret_cast<PyObject*>(self));
}

// ExecutionResult(**fields): what the remote client builds from a server's JSON.
int ResultInit(ResultObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kw[] = {"stdout", "stderr", "result", "error", "exit_code", "failure", "failure_message",
                             "session", "duration_ms", "ok", "stdout_truncated", "stderr_truncated",
                             "display", "display_note", nullptr};
  PyObject *out = nullptr, *err = nullptr, *result = Py_None, *error = Py_None, *exit_code = Py_None,
           *failure = Py_None, *failure_message = nullptr, *session = Py_None,
           *display = nullptr, *display_note = Py_None;
  double duration_ms = 0;
  int ok = 0, out_trunc = 0, err_trunc = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$UUOOOOUOdpppO!O", const_cast<char**>(kw), &out, &err, &result,
                                   &error, &exit_code, &failure, &failure_message, &session, &duration_ms, &ok,
                                   &out_trunc, &err_trunc, &PyList_Type, &display, &display_note))
    return -1;
  auto set = [](PyObject** slot, PyObject* v) {
    Py_XINCREF(v);
    Py_XSETREF(*slot, v);
  };
  PyObject* empty = PyUnicode_New(0, 0);
  set(&self->stdout_text, out ? out : empty);
  set(&self->stderr_text, err ? err : empty);
  set(&self->failure_message, failure_message ? failure_message : empty);
  Py_DECREF(empty);
  set(&self->result, result);
  set(&self->error, error);
  set(&self->exit_code, exit_code);
  set(&self->failure, failure);
  set(&self->session, session);
  if (display) {
    set(&self->display, display);
  } else {
    PyObject* none_shown = PyList_New(0);
    if (!none_shown) return -1;
    Py_XSETREF(self->display, none_shown);
  }
  set(&self->display_note, display_note);
  self->duration_ms = duration_ms;
  self->ok = static_cast<char>(ok);
  self->stdout_truncated = static_cast<char>(out_trunc);
  self->stderr_truncated = static_cast<char>(err_trunc);
  return 0;
}

PyObject* ResultGetSuccess(ResultObject* self, void*) { return PyBool_FromLong(self->ok); }
PyObject* ResultGetValue(ResultObject* self, void*) { return Py_NewRef(self->result); }

PyObject* ResultRepr(ResultObject* self) {
  if (self->ok) return PyUnicode_FromFormat("ExecutionResult(success=True, result=%R, stdout=%R)", self->result,
                                            self->stdout_text);
  return PyUnicode_FromFormat("ExecutionResult(success=False, error=%R, failure=%R, stdout=%R)", self->error,
                              self->failure, self->stdout_text);
}

PyMemberDef kResultMembers[] = {
    {"stdout", T_OBJECT, offsetof(ResultObject, stdout_text), READONLY, "What the code wrote to stdout."},
    {"stderr", T_OBJECT, offsetof(ResultObject, stderr_text), READONLY, "What the code wrote to stderr."},
    {"result", T_OBJECT, offsetof(ResultObject, result), READONLY,
     "repr() of the last expression's value (str), or None."},
    {"error", T_OBJECT, offsetof(ResultObject, error), READONLY,
     "brig.PythonError (type, message, traceback) when the code raised or the sandbox stopped it, else None."},
    {"exit_code", T_OBJECT, offsetof(ResultObject, exit_code), READONLY, "sys.exit()/os._exit() code, or None."},
    {"failure", T_OBJECT, offsetof(ResultObject, failure), READONLY,
     "Why the sandbox stopped the code ('timeout', 'trap', 'exit', 'guest_error'), or None."},
    {"failure_message", T_OBJECT, offsetof(ResultObject, failure_message), READONLY, "Says what the failure was."},
    {"session", T_OBJECT, offsetof(ResultObject, session), READONLY,
     "For a session execution: version, saved, restored_from, files_saved, files_deleted; else None."},
    {"display", T_OBJECT, offsetof(ResultObject, display), READONLY,
     "What the code showed with brig.show(obj), in order: a list of {MIME type: data} dicts (Jupyter's display "
     "data): bytes for image/png, image/jpeg, image/gif; str for text/plain, text/html, text/markdown, "
     "text/latex, image/svg+xml, application/json (JSON text)."},
    {"outputs", T_OBJECT, offsetof(ResultObject, display), READONLY, "Same as display."},
    {"display_note", T_OBJECT, offsetof(ResultObject, display_note), READONLY,
     "Why some shown outputs were dropped (limits, bad data), or None."},
    {"duration_ms", T_DOUBLE, offsetof(ResultObject, duration_ms), READONLY, "Time the execution took."},
    {"ok", T_BOOL, offsetof(ResultObject, ok), READONLY, "Same as success."},
    {"stdout_truncated", T_BOOL, offsetof(ResultObject, stdout_truncated), READONLY, "stdout was cut at the limit."},
    {"stderr_truncated", T_BOOL, offsetof(ResultObject, stderr_truncated), READONLY, "stderr was cut at the limit."},
    {nullptr}};

PyGetSetDef kResultGetSet[] = {
    {"success", reinterpret_cast<getter>(ResultGetSuccess), nullptr,
     "True when the code ran to the end without an exception.", nullptr},
    {"value", reinterpret_cast<getter>(ResultGetValue), nullptr, "Same as result.", nullptr},
    {nullptr}};

const char* FailureKind(brig::Failure f) {
  switch (f) {
    case brig::Failure::kTrap: return "trap";
    case brig::Failure::kExit: return "exit";
    case brig::Failure::kTimeout: return "timeout";
    case brig::Failure::kGuestError: return "guest_error";
    case brig::Failure::kNone: break;
  }
  return nullptr;
}

// The error a failure shows as, so that `not r.success` always comes with an r.error.
const char* FailureErrorType(brig::Failure f) {
  switch (f) {
    case brig::Failure::kTimeout: return "TimeoutError";
    case brig::Failure::kExit: return "SystemExit";
    case brig::Failure::kTrap: return "SandboxTrap";
    default: return "SandboxError";
  }
}

PyObject* MakeError(std::string_view type, std::string_view message, std::string_view traceback) {
  PyObject* t = Text(type);
  PyObject* m = Text(message);
  PyObject* tb = Text(traceback);
  PyObject* e = nullptr;
  if (t && m && tb) {
    // Before brig configured the module (brig._native imported on its own): a plain tuple.
    e = g_python_error ? PyObject_CallFunctionObjArgs(g_python_error, t, m, tb, nullptr) : PyTuple_Pack(3, t, m, tb);
  }
  Py_XDECREF(t);
  Py_XDECREF(m);
  Py_XDECREF(tb);
  return e;
}

// A new ExecutionResult for `r` (session: a dict or nullptr, stolen).
PyObject* MakeResult(const brig::ExecutionResult& r, PyObject* session) {
  ResultObject* o = PyObject_New(ResultObject, &ResultType);
  if (!o) {
    Py_XDECREF(session);
    return nullptr;
  }
  o->stdout_text = Text(r.stdout_text);
  o->stderr_text = Text(r.stderr_text);
  o->result = r.result ? Text(*r.result) : Py_NewRef(Py_None);
  o->exit_code = r.exit_code ? PyLong_FromLong(*r.exit_code) : Py_NewRef(Py_None);
  const char* kind = FailureKind(r.failure);
  o->failure = kind ? PyUnicode_FromString(kind) : Py_NewRef(Py_None);
  o->failure_message = Text(r.failure_message);
  o->session = session ? session : Py_NewRef(Py_None);
  o->display = PyList_New(0);
  for (const brig::DisplayOutput& shown : r.display) {
    if (!o->display) break;
    PyObject* bundle = PyDict_New();
    for (const auto& [mime, data] : shown.data) {
      PyObject* v = !bundle ? nullptr
                    : brig::IsBinaryDisplayType(mime) ? PyBytes_FromStringAndSize(data.data(), static_cast<Py_ssize_t>(data.size()))
                                                      : Text(data);
      if (!v || PyDict_SetItemString(bundle, mime.c_str(), v) < 0) Py_CLEAR(bundle);
      Py_XDECREF(v);
    }
    if (!bundle || PyList_Append(o->display, bundle) < 0) Py_CLEAR(o->display);
    Py_XDECREF(bundle);
  }
  o->display_note = r.display_note.empty() ? Py_NewRef(Py_None) : Text(r.display_note);
  if (r.error) {
    o->error = MakeError(r.error->type, r.error->message, r.error->traceback);
  } else if (kind) {
    o->error = MakeError(FailureErrorType(r.failure), r.failure_message, "");
  } else {
    o->error = Py_NewRef(Py_None);
  }
  o->duration_ms = r.duration_ms;
  o->ok = r.ok;
  o->stdout_truncated = r.stdout_truncated;
  o->stderr_truncated = r.stderr_truncated;
  if (!o->stdout_text || !o->stderr_text || !o->result || !o->exit_code || !o->failure || !o->failure_message ||
      !o->error || !o->display || !o->display_note) {
    Py_DECREF(o);
    return nullptr;
  }
  return reinterpret_cast<PyObject*>(o);
}

// ---- Limits from keyword arguments (shared by Sandbox and Sessions).

bool ParseLimits(double timeout_seconds, long long memory_mb, long long output_bytes, brig::Limits* limits) {
  if (memory_mb < 16 || memory_mb > 4095) {
    PyErr_SetString(PyExc_ValueError, "memory_mb must be 16..4095");
    return false;
  }
  if (output_bytes < 1) {
    PyErr_SetString(PyExc_ValueError, "output_bytes must be positive");
    return false;
  }
  limits->timeout_seconds = timeout_seconds;
  limits->memory_bytes = static_cast<uint64_t>(memory_mb) << 20;
  limits->output_bytes = static_cast<uint64_t>(output_bytes);
  brig::Status valid = brig::ValidateLimits(*limits);
  if (!valid.ok()) {
    RaiseStatus(valid);
    return false;
  }
  return true;
}

// execute(code, *, timeout=None): the code and the optional per-execution timeout.
bool ParseExecuteArgs(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, Py_ssize_t first,
                      std::string_view* code, std::optional<double>* timeout) {
  if (nargs != first + 1) {
    PyErr_Format(PyExc_TypeError, "execute() takes %zd positional argument(s)", first + 1);
    return false;
  }
  auto c = Utf8(args[first], "code");
  if (!c) return false;
  *code = *c;
  Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t i = 0; i < nkw; i++) {
    PyObject* name = PyTuple_GET_ITEM(kwnames, i);
    PyObject* v = args[nargs + i];
    if (PyUnicode_CompareWithASCIIString(name, "timeout") != 0) {
      PyErr_Format(PyExc_TypeError, "execute() got an unexpected keyword argument %R", name);
      return false;
    }
    if (v == Py_None) continue;
    double t = PyFloat_AsDouble(v);
    if (t == -1.0 && PyErr_Occurred()) return false;
    *timeout = t;
  }
  return true;
}

// ---- Sandbox

struct SandboxObject {
  PyObject_HEAD
  std::unique_ptr<brig::Sandbox> sandbox;
  std::mutex* mu;  // serialises calls (brig::Sandbox: one thread at a time)
  brig::Limits limits;
  PyObject* weakrefs;
};

PyTypeObject SandboxType = {PyVarObject_HEAD_INIT(nullptr, 0)};

PyObject* SandboxNew(PyTypeObject* type, PyObject*, PyObject*) {
  auto* self = reinterpret_cast<SandboxObject*>(type->tp_alloc(type, 0));
  if (!self) return nullptr;
  new (&self->sandbox) std::unique_ptr<brig::Sandbox>();
  new (&self->limits) brig::Limits();
  self->mu = new (std::nothrow) std::mutex;
  if (!self->mu) {
    Py_DECREF(self);
    return PyErr_NoMemory();
  }
  return reinterpret_cast<PyObject*>(self);
}

void SandboxDealloc(SandboxObject* self) {
  if (self->weakrefs) PyObject_ClearWeakRefs(reinterpret_cast<PyObject*>(self));
  {
    // Destroying an interpreter unmaps its memory: no need for the GIL.
    std::unique_ptr<brig::Sandbox> sb = std::move(self->sandbox);
    if (sb) {
      Py_BEGIN_ALLOW_THREADS sb.reset();
      Py_END_ALLOW_THREADS
    }
  }
  self->sandbox.~unique_ptr();
  self->limits.~Limits();
  delete self->mu;
  Py_TYPE(self)->tp_free(reinterpret_cast<PyObject*>(self));
}

int SandboxInit(SandboxObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kw[] = {"timeout_seconds", "memory_mb", "output_bytes", "cold", nullptr};
  double timeout = 30.0;
  long long memory_mb = 256, output_bytes = 1 << 20;
  int cold = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$dLLp", const_cast<char**>(kw), &timeout, &memory_mb,
                                   &output_bytes, &cold))
    return -1;
  brig::Limits limits;
  if (!ParseLimits(timeout, memory_mb, output_bytes, &limits)) return -1;
  brig::StatusOr<std::unique_ptr<brig::Sandbox>> made = brig::Status::Internal("not made");
  Py_BEGIN_ALLOW_THREADS made = brig::Sandbox::Create(limits, cold ? brig::Start::kCold : brig::Start::kFromImage);
  Py_END_ALLOW_THREADS
  if (!made.ok()) {
    RaiseStatus(made.status());
    return -1;
  }
  std::unique_ptr<brig::Sandbox> old = std::move(self->sandbox);
  self->sandbox = std::move(made.value());
  self->limits = limits;
  if (old) {
    Py_BEGIN_ALLOW_THREADS old.reset();
    Py_END_ALLOW_THREADS
  }
  return 0;
}

bool SandboxReady(SandboxObject* self) {
  if (self->sandbox) return true;
  PyErr_SetString(PyExc_RuntimeError, "brig.Sandbox: not initialised (call __init__)");
  return false;
}

// The hot path: METH_FASTCALL, the GIL released around the guest call.
PyObject* SandboxExecute(SandboxObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  if (!SandboxReady(self)) return nullptr;
  std::string_view code;
  std::optional<double> timeout;
  if (!ParseExecuteArgs(args, nargs, kwnames, 0, &code, &timeout)) return nullptr;
  brig::ExecutionResult r;
  if (!timeout) {
    Py_BEGIN_ALLOW_THREADS {
      std::lock_guard<std::mutex> lock(*self->mu);
      r = self->sandbox->Execute(code);
    }
    Py_END_ALLOW_THREADS
  } else {
    brig::ExecuteOptions options;
    options.timeout_seconds = *timeout;
    brig::StatusOr<brig::ExecutionResult> ran = brig::Status::Internal("not run");
    Py_BEGIN_ALLOW_THREADS {
      std::lock_guard<std::mutex> lock(*self->mu);
      ran = self->sandbox->Execute(code, options);
    }
    Py_END_ALLOW_THREADS
    if (!ran.ok()) return RaiseStatus(ran.status());
    r = std::move(ran.value());
  }
  return MakeResult(r, nullptr);
}

PyObject* SandboxReset(SandboxObject* self, PyObject*) {
  if (!SandboxReady(self)) return nullptr;
  brig::Status s;
  Py_BEGIN_ALLOW_THREADS {
    std::lock_guard<std::mutex> lock(*self->mu);
    s = self->sandbox->Reset();
  }
  Py_END_ALLOW_THREADS
  if (!s.ok()) return RaiseStatus(s);
  Py_RETURN_NONE;
}

PyObject* WrapSandbox(PyTypeObject* type, std::unique_ptr<brig::Sandbox> sb, const brig::Limits& limits) {
  PyObject* o = SandboxNew(type, nullptr, nullptr);
  if (!o) return nullptr;
  auto* so = reinterpret_cast<SandboxObject*>(o);
  so->sandbox = std::move(sb);
  so->limits = limits;
  return o;
}

PyObject* SandboxFork(SandboxObject* self, PyObject*) {
  if (!SandboxReady(self)) return nullptr;
  brig::StatusOr<std::unique_ptr<brig::Sandbox>> forked = brig::Status::Internal("not forked");
  Py_BEGIN_ALLOW_THREADS {
    std::lock_guard<std::mutex> lock(*self->mu);
    forked = self->sandbox->Fork();
  }
  Py_END_ALLOW_THREADS
  if (!forked.ok()) return RaiseStatus(forked.status());
  return WrapSandbox(Py_TYPE(self), std::move(forked.value()), self->limits);
}

// ---- Sandbox snapshots: "BRIGSBX1", then little-endian u32/u64 lengths:
//   u32 file count, per file (u32 path length, path, u64 size, bytes);
//   u32 directory count, per directory (u32 length, path); u64 page-snapshot length, pages.
// The page snapshot is the engine's (tied to this guest build and image, checked on restore).

constexpr std::string_view kSnapMagic = "BRIGSBX1";

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; i++) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; i++) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

struct Reader {
  std::string_view in;
  bool ok = true;
  uint64_t Int(int bytes) {
    if (in.size() < static_cast<size_t>(bytes)) {
      ok = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
    in.remove_prefix(bytes);
    return v;
  }
  std::string_view Take(uint64_t n) {
    if (!ok || n > in.size()) {
      ok = false;
      return {};
    }
    std::string_view v = in.substr(0, n);
    in.remove_prefix(n);
    return v;
  }
};

brig::StatusOr<std::string> SaveSandbox(brig::Sandbox& sb) {
  auto pages = sb.SavePages();
  if (!pages.ok()) return pages.status();
  std::string out(kSnapMagic);
  std::vector<brig::Sandbox::FileEntry> files = sb.ListFiles();
  PutU32(&out, static_cast<uint32_t>(files.size()));
  for (const auto& f : files) {
    std::optional<std::string> content = sb.ReadFile(f.path);
    if (!content) return brig::Status::Internal("file " + f.path + " vanished while saving");
    PutU32(&out, static_cast<uint32_t>(f.path.size()));
    out += f.path;
    PutU64(&out, content->size());
    out += *content;
  }
  std::vector<std::string> dirs = sb.ListEmptyDirectories();
  PutU32(&out, static_cast<uint32_t>(dirs.size()));
  for (const auto& d : dirs) {
    PutU32(&out, static_cast<uint32_t>(d.size()));
    out += d;
  }
  PutU64(&out, pages.value().size());
  out += pages.value();
  return out;
}

// A new sandbox in the state `data` holds (the current one is untouched until it succeeds).
brig::StatusOr<std::unique_ptr<brig::Sandbox>> RestoreSandbox(std::string_view data, const brig::Limits& limits) {
  Reader r{data};
  if (r.Take(kSnapMagic.size()) != kSnapMagic) {
    return brig::Status::InvalidArgument("not a brig.Sandbox snapshot (bad magic)");
  }
  auto made = brig::Sandbox::Create(limits, brig::Start::kFromImage);
  if (!made.ok()) return made.status();
  brig::Sandbox& sb = *made.value();
  uint64_t nfiles = r.Int(4);
  for (uint64_t i = 0; r.ok && i < nfiles; i++) {
    std::string_view path = r.Take(r.Int(4));
    std::string_view content = r.Take(r.Int(8));
    if (!r.ok) break;
    brig::Status w = sb.WriteFile(path, content);
    if (!w.ok()) return w.WithPrefix("snapshot file: ");
  }
  uint64_t ndirs = r.Int(4);
  for (uint64_t i = 0; r.ok && i < ndirs; i++) {
    std::string_view path = r.Take(r.Int(4));
    if (!r.ok) break;
    brig::Status m = sb.MakeDirectory(path);
    if (!m.ok()) return m.WithPrefix("snapshot directory: ");
  }
  std::string_view pages = r.Take(r.Int(8));
  if (!r.ok || !r.in.empty()) return brig::Status::InvalidArgument("brig.Sandbox snapshot is truncated or damaged");
  brig::Status restored = sb.RestorePages(pages);
  if (!restored.ok()) return restored;
  return std::move(made.value());
}

PyObject* SandboxSnapshot(SandboxObject* self, PyObject*) {
  if (!SandboxReady(self)) return nullptr;
  brig::StatusOr<std::string> saved = brig::Status::Internal("not saved");
  Py_BEGIN_ALLOW_THREADS {
    std::lock_guard<std::mutex> lock(*self->mu);
    saved = SaveSandbox(*self->sandbox);
  }
  Py_END_ALLOW_THREADS
  if (!saved.ok()) return RaiseStatus(saved.status());
  return Bytes(saved.value());
}

PyObject* SandboxRestore(SandboxObject* self, PyObject* arg) {
  if (!SandboxReady(self)) return nullptr;
  Py_buffer view;
  if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) != 0) return nullptr;
  brig::StatusOr<std::unique_ptr<brig::Sandbox>> made = brig::Status::Internal("not restored");
  std::unique_ptr<brig::Sandbox> old;
  Py_BEGIN_ALLOW_THREADS {
    made = RestoreSandbox(std::string_view(static_cast<const char*>(view.buf), static_cast<size_t>(view.len)),
                          self->limits);
    if (made.ok()) {
      std::lock_guard<std::mutex> lock(*self->mu);
      old = std::move(self->sandbox);
      self->sandbox = std::move(made.value());
    }
    old.reset();
  }
  Py_END_ALLOW_THREADS
  PyBuffer_Release(&view);
  if (!made.ok()) return RaiseStatus(made.status());
  Py_RETURN_NONE;
}

PyObject* SandboxReadFile(SandboxObject* self, PyObject* arg) {
  if (!SandboxReady(self)) return nullptr;
  auto path = Utf8(arg, "path");
  if (!path) return nullptr;
  std::optional<std::string> content;
  Py_BEGIN_ALLOW_THREADS {
    std::lock_guard<std::mutex> lock(*self->mu);
    content = self->sandbox->ReadFile(*path);
  }
  Py_END_ALLOW_THREADS
  if (!content) Py_RETURN_NONE;
  return Bytes(*content);
}

PyObject* SandboxWriteFile(SandboxObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (!SandboxReady(self)) return nullptr;
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "write_file(path, data) takes 2 arguments");
    return nullptr;
  }
  auto path = Utf8(args[0], "path");
  if (!path) return nullptr;
  Py_buffer view;
  if (PyObject_GetBuffer(args[1], &view, PyBUF_SIMPLE) != 0) return nullptr;
  brig::Status s;
  Py_BEGIN_ALLOW_THREADS {
    std::lock_guard<std::mutex> lock(*self->mu);
    s = self->sandbox->WriteFile(*path, std::string_view(static_cast<const char*>(view.buf), view.len));
  }
  Py_END_ALLOW_THREADS
  PyBuffer_Release(&view);
  if (!s.ok()) return RaiseStatus(s);
  Py_RETURN_NONE;
}

PyObject* SandboxListFiles(SandboxObject* self, PyObject*) {
  if (!SandboxReady(self)) return nullptr;
  std::vector<brig::Sandbox::FileEntry> files;
  Py_BEGIN_ALLOW_THREADS {
    std::lock_guard<std::mutex> lock(*self->mu);
    files = self->sandbox->ListFiles();
  }
  Py_END_ALLOW_THREADS
  PyObject* list = PyList_New(0);
  if (!list) return nullptr;
  for (const auto& f : files) {
    PyObject* item = Py_BuildValue("(s#K)", f.path.data(), static_cast<Py_ssize_t>(f.path.size()),
                                   static_cast<unsigned long long>(f.size));
    if (!item || PyList_Append(list, item) != 0) {
      Py_XDECREF(item);
      Py_DECREF(list);
      return nullptr;
    }
    Py_DECREF(item);
  }
  return list;
}

PyObject* SandboxMemory(SandboxObject* self, void*) {
  if (!SandboxReady(self)) return nullptr;
  uint64_t n;
  {
    std::lock_guard<std::mutex> lock(*self->mu);
    n = self->sandbox->GuestMemoryBytes();
  }
  return PyLong_FromUnsignedLongLong(n);
}

// _bench_loop(code, n) -> (wall ns, thread CPU ns): n executions timed in C++ on this sandbox,
// for bench/python_bench.py (the C++ side of "Python overhead per call", measured on the same
// sandbox in the same process; CPU time is what a loaded machine disturbs least).
PyObject* SandboxBenchLoop(SandboxObject* self, PyObject* args) {
  if (!SandboxReady(self)) return nullptr;
  const char* code;
  long long n;
  if (!PyArg_ParseTuple(args, "sL", &code, &n)) return nullptr;
  bool ok = true;
  int64_t ns = 0, cpu_ns = 0;
  auto thread_cpu = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  };
  Py_BEGIN_ALLOW_THREADS {
    std::lock_guard<std::mutex> lock(*self->mu);
    auto start = std::chrono::steady_clock::now();
    int64_t cpu_start = thread_cpu();
    for (long long i = 0; i < n; i++) ok &= self->sandbox->Execute(code).ok;
    cpu_ns = thread_cpu() - cpu_start;
    ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  }
  Py_END_ALLOW_THREADS
  if (!ok) {
    PyErr_SetString(PyExc_RuntimeError, "_bench_loop: an execution failed");
    return nullptr;
  }
  return Py_BuildValue("(LL)", static_cast<long long>(ns), static_cast<long long>(cpu_ns));
}

PyObject* SandboxGuestBuild(PyObject*, PyObject*) {
  std::string_view id = brig::Sandbox::GuestBuildId();
  return PyUnicode_FromStringAndSize(id.data(), static_cast<Py_ssize_t>(id.size()));
}

PyMethodDef kSandboxMethods[] = {
    {"execute", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(SandboxExecute)),
     METH_FASTCALL | METH_KEYWORDS,
     "execute(code, *, timeout=None) -> ExecutionResult\n\nRuns code in this interpreter's __main__ (variables "
     "persist). A Python exception is a result (success False, error set), not a raise."},
    {"reset", reinterpret_cast<PyCFunction>(SandboxReset), METH_NOARGS,
     "reset()\n\nBack to a fresh interpreter: no variables, modules or files."},
    {"fork", reinterpret_cast<PyCFunction>(SandboxFork), METH_NOARGS,
     "fork() -> Sandbox\n\nA new sandbox in this one's state (variables, modules, files); the two then diverge."},
    {"snapshot", reinterpret_cast<PyCFunction>(SandboxSnapshot), METH_NOARGS,
     "snapshot() -> bytes\n\nThe interpreter state and files as bytes, for restore() in a process running the "
     "same brig build."},
    {"restore", reinterpret_cast<PyCFunction>(SandboxRestore), METH_O,
     "restore(data)\n\nPuts this sandbox in the state snapshot() saved. On error it is unchanged."},
    {"read_file", reinterpret_cast<PyCFunction>(SandboxReadFile), METH_O,
     "read_file(path) -> bytes | None\n\nA file under /home/user or /tmp, or None if missing."},
    {"write_file", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(SandboxWriteFile)), METH_FASTCALL,
     "write_file(path, data)\n\nCreates or replaces a file under /home/user or /tmp (parents made)."},
    {"list_files", reinterpret_cast<PyCFunction>(SandboxListFiles), METH_NOARGS,
     "list_files() -> list[tuple[str, int]]\n\nEvery file under /home/user and /tmp with its size."},
    {"_bench_loop", reinterpret_cast<PyCFunction>(SandboxBenchLoop), METH_VARARGS,
     "_bench_loop(code, n) -> (wall_ns, cpu_ns)\n\nn executions timed in C++ (benchmarks only)."},
    {"guest_build_id", SandboxGuestBuild, METH_NOARGS | METH_STATIC, "The guest build this brig runs."},
    {nullptr}};

PyGetSetDef kSandboxGetSet[] = {
    {"memory_bytes", reinterpret_cast<getter>(SandboxMemory), nullptr, "Size of the guest's linear memory.",
     nullptr},
    {nullptr}};

// ---- Sessions

struct SessionsObject {
  PyObject_HEAD
  std::unique_ptr<brig::Sessions> sessions;
};

PyTypeObject SessionsType = {PyVarObject_HEAD_INIT(nullptr, 0)};

PyObject* SessionsNew(PyTypeObject* type, PyObject*, PyObject*) {
  auto* self = reinterpret_cast<SessionsObject*>(type->tp_alloc(type, 0));
  if (self) new (&self->sessions) std::unique_ptr<brig::Sessions>();
  return reinterpret_cast<PyObject*>(self);
}

void SessionsDealloc(SessionsObject* self) {
  std::unique_ptr<brig::Sessions> s = std::move(self->sessions);
  if (s) {
    Py_BEGIN_ALLOW_THREADS s.reset();
    Py_END_ALLOW_THREADS
  }
  self->sessions.~unique_ptr();
  Py_TYPE(self)->tp_free(reinterpret_cast<PyObject*>(self));
}

int SessionsInit(SessionsObject* self, PyObject* args, PyObject* kwargs) {
  static const char* kw[] = {"store_url", "timeout_seconds", "memory_mb", "default_expiry_days", "max_live",
                             nullptr};
  const char* url = nullptr;
  double timeout = 30.0;
  long long memory_mb = 256, expiry = 180, max_live = 64;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s|$dLLL", const_cast<char**>(kw), &url, &timeout, &memory_mb,
                                   &expiry, &max_live))
    return -1;
  brig::Sessions::Options options;
  options.store_url = url;
  if (!ParseLimits(timeout, memory_mb, 1 << 20, &options.limits)) return -1;
  if (expiry < 1 || expiry > brig::kMaxExpiryDays || max_live < 0) {
    PyErr_SetString(PyExc_ValueError, "default_expiry_days must be 1..36500 and max_live >= 0");
    return -1;
  }
  options.default_expiry_days = expiry;
  options.max_live = static_cast<size_t>(max_live);
  brig::StatusOr<std::unique_ptr<brig::Sessions>> opened = brig::Status::Internal("not opened");
  Py_BEGIN_ALLOW_THREADS opened = brig::Sessions::Open(options);
  Py_END_ALLOW_THREADS
  if (!opened.ok()) {
    RaiseStatus(opened.status());
    return -1;
  }
  self->sessions = std::move(opened.value());
  return 0;
}

bool SessionsReady(SessionsObject* self) {
  if (self->sessions) return true;
  PyErr_SetString(PyExc_RuntimeError, "brig._native.Sessions: not initialised");
  return false;
}

PyObject* SessionDict(const std::string& thread_id, const brig::SessionResult& s) {
  nlohmann::json j = {{"thread_id", thread_id},         {"version", s.version},
                      {"saved", s.saved},               {"restored_from", s.restored_from},
                      {"files_saved", s.files_saved},   {"files_deleted", s.files_deleted},
                      {"not_portable", s.not_portable}, {"not_restored", s.not_restored}};
  nlohmann::json files = nlohmann::json::array();
  for (const brig::FileInfo& f : s.files_changed)
    files.push_back({{"path", f.path}, {"size", f.size}, {"content_type", f.content_type}});
  j["files"] = std::move(files);
  PyObject* text = JsonToPython(j);
  if (!text || !g_json_loads) return text;
  PyObject* d = PyObject_CallOneArg(g_json_loads, text);
  Py_DECREF(text);
  return d;
}

// execute(thread_id, code, *, timeout=None) -> ExecutionResult
PyObject* SessionsExecute(SessionsObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  if (!SessionsReady(self)) return nullptr;
  if (nargs < 1) {
    PyErr_SetString(PyExc_TypeError, "execute(thread_id, code, *, timeout=None)");
    return nullptr;
  }
  auto tid = Utf8(args[0], "thread_id");
  if (!tid) return nullptr;
  std::string_view code;
  std::optional<double> timeout;
  if (!ParseExecuteArgs(args, nargs, kwnames, 1, &code, &timeout)) return nullptr;
  brig::ExecuteOptions options;
  options.timeout_seconds = timeout;
  brig::StatusOr<brig::SessionResult> ran = brig::Status::Internal("not run");
  Py_BEGIN_ALLOW_THREADS ran = self->sessions->Execute(*tid, code, options);
  Py_END_ALLOW_THREADS
  if (!ran.ok()) return RaiseStatus(ran.status());
  PyObject* session = SessionDict(std::string(*tid), ran.value());
  if (!session) return nullptr;
  return MakeResult(ran.value().execution, session);
}

nlohmann::json SessionJson(const brig::SessionManager& m, const brig::SessionInfo& s) {
  return {{"thread_id", s.thread_id},
          {"created_at", brig::FormatTimestamp(s.created_at)},
          {"last_accessed", brig::FormatTimestamp(s.last_accessed)},
          {"expires_at", brig::FormatTimestamp(s.expires_at)},
          {"expired", m.IsExpired(s)},
          {"metadata", s.metadata},
          {"file_count", s.file_count},
          {"total_bytes", s.total_bytes}};
}

nlohmann::json FileJson(const brig::FileInfo& f) {
  return {{"path", f.path},
          {"size", f.size},
          {"content_type", f.content_type},
          {"created_at", brig::FormatTimestamp(f.created_at)},
          {"modified_at", brig::FormatTimestamp(f.modified_at)}};
}

// Most calls below go through `call`: one JSON-speaking entry point, so that the pure-Python
// layer treats this process's store and a server (whose answers are the same JSON) alike.
//   call(op, thread_id, args_json) -> str (JSON)
// Ops: get_or_create, create, get, exists, list, extend, delete, reset, fork, cleanup,
// file_read (args path, offset, limit -> {"info", "content_hex"}: bytes go separately, below),
// file_write, file_edit, file_delete, file_list, file_glob, file_grep.
brig::StatusOr<nlohmann::json> Call(brig::Sessions& sessions, const std::string& op, const std::string& tid,
                                    const nlohmann::json& a) {
  brig::SessionManager& m = sessions.manager();
  brig::FileService& files = sessions.files();
  auto session = [&](const brig::StatusOr<brig::SessionInfo>& s) -> brig::StatusOr<nlohmann::json> {
    if (!s.ok()) return s.status();
    return SessionJson(m, s.value());
  };
  auto opt_days = [&](const char* key) -> std::optional<int64_t> {
    if (!a.contains(key) || a[key].is_null()) return std::nullopt;
    return a[key].get<int64_t>();
  };
  if (op == "get_or_create") return session(m.GetOrCreate(tid));
  if (op == "create") {
    return session(m.Create(tid, opt_days("expiry_days"), a.value("metadata", nlohmann::json::object())));
  }
  if (op == "get") return session(m.Get(tid));
  if (op == "exists") {
    auto e = m.Exists(tid);
    if (!e.ok()) return e.status();
    return nlohmann::json(e.value());
  }
  if (op == "list") {
    auto l = m.List();
    if (!l.ok()) return l.status();
    nlohmann::json out = nlohmann::json::array();
    for (const auto& s : l.value()) out.push_back(SessionJson(m, s));
    return out;
  }
  if (op == "extend") return session(m.Extend(tid, a.at("days").get<int64_t>()));
  if (op == "delete") {
    brig::Status s = m.Delete(tid);
    if (!s.ok()) return s;
    return nlohmann::json(nullptr);
  }
  if (op == "reset") {
    brig::Status s = sessions.Reset(tid);
    if (!s.ok()) return s;
    return nlohmann::json(nullptr);
  }
  if (op == "fork") {
    brig::ForkOptions fo;
    fo.expiry_days = opt_days("expiry_days");
    if (a.contains("metadata") && !a["metadata"].is_null()) fo.metadata = a["metadata"];
    return session(m.Fork(tid, a.at("thread_id").get<std::string>(), fo));
  }
  if (op == "cleanup") {
    auto c = m.Cleanup(a.value("dry_run", false));
    if (!c.ok()) return c.status();
    return nlohmann::json{{"sessions_deleted", c.value().sessions_deleted},
                          {"files_deleted", c.value().files_deleted},
                          {"bytes_freed", c.value().bytes_freed}};
  }
  if (op == "file_edit") {
    auto n = files.Edit(tid, a.at("path").get<std::string>(), a.at("old_text").get<std::string>(),
                        a.at("new_text").get<std::string>(), a.value("replace_all", false));
    if (!n.ok()) return n.status();
    return nlohmann::json{{"replacements", n.value()}};
  }
  if (op == "file_delete") {
    brig::Status s = files.Delete(tid, a.at("path").get<std::string>());
    if (!s.ok()) return s;
    return nlohmann::json(nullptr);
  }
  if (op == "file_list" || op == "file_glob") {
    auto l = op == "file_list" ? files.List(tid, a.value("prefix", std::string()))
                               : files.Glob(tid, a.at("pattern").get<std::string>());
    if (!l.ok()) return l.status();
    nlohmann::json out = nlohmann::json::array();
    for (const auto& f : l.value()) out.push_back(FileJson(f));
    return nlohmann::json{{"files", out}};
  }
  if (op == "file_grep") {
    brig::GrepOptions go;
    std::string mode = a.value("mode", std::string("content"));
    if (mode == "content") go.mode = brig::GrepMode::kContent;
    else if (mode == "files_with_matches") go.mode = brig::GrepMode::kFilesWithMatches;
    else if (mode == "count") go.mode = brig::GrepMode::kCount;
    else return brig::Status::InvalidArgument("grep mode must be content, files_with_matches or count");
    go.case_insensitive = a.value("case_insensitive", false);
    go.path_glob = a.value("path_glob", std::string());
    if (a.contains("max_lines")) go.max_lines = a["max_lines"].get<int64_t>();
    auto g = files.Grep(tid, a.at("pattern").get<std::string>(), go);
    if (!g.ok()) return g.status();
    nlohmann::json out = nlohmann::json::array();
    for (const auto& f : g.value().files) {
      nlohmann::json jf = {{"path", f.path}, {"count", f.count}, {"binary", f.binary}};
      if (go.mode == brig::GrepMode::kContent) {
        nlohmann::json lines = nlohmann::json::array();
        for (const auto& l : f.lines)
          lines.push_back({{"line", l.number}, {"text", l.text}, {"text_truncated", l.text_truncated}});
        jf["lines"] = std::move(lines);
      }
      out.push_back(std::move(jf));
    }
    return nlohmann::json{{"files", out},
                          {"files_searched", g.value().files_searched},
                          {"truncated", g.value().truncated},
                          {"truncated_reason", g.value().truncated ? nlohmann::json(g.value().truncated_reason)
                                                                   : nlohmann::json()}};
  }
  return brig::Status::InvalidArgument("unknown operation " + op);
}

PyObject* SessionsCall(SessionsObject* self, PyObject* args) {
  if (!SessionsReady(self)) return nullptr;
  const char *op, *tid, *json_args;
  if (!PyArg_ParseTuple(args, "sss", &op, &tid, &json_args)) return nullptr;
  nlohmann::json a = nlohmann::json::parse(json_args, nullptr, false);
  if (a.is_discarded() || !a.is_object()) {
    PyErr_SetString(PyExc_ValueError, "arguments must be a JSON object");
    return nullptr;
  }
  brig::StatusOr<nlohmann::json> out = brig::Status::Internal("not called");
  std::string error;
  std::string sop(op), stid(tid);
  Py_BEGIN_ALLOW_THREADS try {
    out = Call(*self->sessions, sop, stid, a);
  } catch (const nlohmann::json::exception& e) {  // a missing or mistyped argument
    error = e.what();
  } catch (const std::exception& e) {
    error = e.what();
  }
  Py_END_ALLOW_THREADS
  if (!error.empty()) return RaiseStatus(brig::Status::InvalidArgument("bad arguments for " + sop + ": " + error));
  if (!out.ok()) return RaiseStatus(out.status());
  return JsonToPython(out.value());
}

// read_file(thread_id, path, offset, limit) -> (bytes, info_json)
PyObject* SessionsReadFile(SessionsObject* self, PyObject* args) {
  if (!SessionsReady(self)) return nullptr;
  const char *tid, *path;
  long long offset = 0, limit = -1;
  if (!PyArg_ParseTuple(args, "ss|LL", &tid, &path, &offset, &limit)) return nullptr;
  brig::StatusOr<brig::FileData> data = brig::Status::Internal("not read");
  Py_BEGIN_ALLOW_THREADS data = self->sessions->files().Read(tid, path, offset, limit);
  Py_END_ALLOW_THREADS
  if (!data.ok()) return RaiseStatus(data.status());
  PyObject* info = JsonToPython(FileJson(data.value().info));
  if (!info) return nullptr;
  return Py_BuildValue("(y#N)", data.value().content.data(), static_cast<Py_ssize_t>(data.value().content.size()),
                       info);
}

// write_file(thread_id, path, data, content_type="") -> info_json
PyObject* SessionsWriteFile(SessionsObject* self, PyObject* args) {
  if (!SessionsReady(self)) return nullptr;
  const char *tid, *path, *ctype = "";
  Py_buffer view;
  if (!PyArg_ParseTuple(args, "ssy*|s", &tid, &path, &view, &ctype)) return nullptr;
  std::string content(static_cast<const char*>(view.buf), static_cast<size_t>(view.len));
  PyBuffer_Release(&view);
  brig::StatusOr<brig::FileInfo> info = brig::Status::Internal("not written");
  Py_BEGIN_ALLOW_THREADS info = self->sessions->files().Write(tid, path, std::move(content), ctype);
  Py_END_ALLOW_THREADS
  if (!info.ok()) return RaiseStatus(info.status());
  return JsonToPython(FileJson(info.value()));
}

PyObject* SessionsExport(SessionsObject* self, PyObject* args) {
  if (!SessionsReady(self)) return nullptr;
  const char* tid;
  if (!PyArg_ParseTuple(args, "s", &tid)) return nullptr;
  brig::StatusOr<std::string> bytes = brig::Status::Internal("not exported");
  Py_BEGIN_ALLOW_THREADS bytes = self->sessions->ExportSnapshot(tid);
  Py_END_ALLOW_THREADS
  if (!bytes.ok()) return RaiseStatus(bytes.status());
  return Bytes(bytes.value());
}

PyObject* SessionsImport(SessionsObject* self, PyObject* args) {
  if (!SessionsReady(self)) return nullptr;
  const char* tid;
  Py_buffer view;
  if (!PyArg_ParseTuple(args, "sy*", &tid, &view)) return nullptr;
  brig::StatusOr<brig::ImportResult> imported = brig::Status::Internal("not imported");
  Py_BEGIN_ALLOW_THREADS imported = self->sessions->ImportSnapshot(
      tid, std::string_view(static_cast<const char*>(view.buf), static_cast<size_t>(view.len)));
  Py_END_ALLOW_THREADS
  PyBuffer_Release(&view);
  if (!imported.ok()) return RaiseStatus(imported.status());
  nlohmann::json j = SessionJson(self->sessions->manager(), imported.value().session);
  j["restored_from"] = imported.value().restored_from;
  j["not_restored"] = imported.value().not_restored;
  return JsonToPython(j);
}

PyMethodDef kSessionsMethods[] = {
    {"execute", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(SessionsExecute)),
     METH_FASTCALL | METH_KEYWORDS, "execute(thread_id, code, *, timeout=None) -> ExecutionResult"},
    {"call", reinterpret_cast<PyCFunction>(SessionsCall), METH_VARARGS, "call(op, thread_id, args_json) -> str"},
    {"read_file", reinterpret_cast<PyCFunction>(SessionsReadFile), METH_VARARGS,
     "read_file(thread_id, path, offset=0, limit=-1) -> (bytes, info_json)"},
    {"write_file", reinterpret_cast<PyCFunction>(SessionsWriteFile), METH_VARARGS,
     "write_file(thread_id, path, data, content_type='') -> info_json"},
    {"export_snapshot", reinterpret_cast<PyCFunction>(SessionsExport), METH_VARARGS,
     "export_snapshot(thread_id) -> bytes"},
    {"import_snapshot", reinterpret_cast<PyCFunction>(SessionsImport), METH_VARARGS,
     "import_snapshot(thread_id, data) -> str (JSON)"},
    {nullptr}};

// ---- Module

PyObject* Configure(PyObject*, PyObject* args) {
  PyObject *factory, *python_error, *loads;
  if (!PyArg_ParseTuple(args, "OOO", &factory, &python_error, &loads)) return nullptr;
  Py_XSETREF(g_json_loads, Py_NewRef(loads));
  Py_XSETREF(g_error_factory, Py_NewRef(factory));
  Py_XSETREF(g_python_error, Py_NewRef(python_error));
  Py_RETURN_NONE;
}

PyMethodDef kModuleMethods[] = {
    {"_configure", Configure, METH_VARARGS, "_configure(error_factory, PythonError, json_loads): set by brig at import."},
    {nullptr}};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "brig._native", "brig's engine, in this process.", -1,
                       kModuleMethods};

}  // namespace

PyMODINIT_FUNC PyInit__native() {
  ResultType.tp_name = "brig.ExecutionResult";
  ResultType.tp_basicsize = sizeof(ResultObject);
  ResultType.tp_flags = Py_TPFLAGS_DEFAULT;
  ResultType.tp_doc = "What an execution did: stdout, stderr, result, error, success, failure, duration_ms.";
  ResultType.tp_new = PyType_GenericNew;
  ResultType.tp_init = reinterpret_cast<initproc>(ResultInit);
  ResultType.tp_dealloc = reinterpret_cast<destructor>(ResultDealloc);
  ResultType.tp_members = kResultMembers;
  ResultType.tp_getset = kResultGetSet;
  ResultType.tp_repr = reinterpret_cast<reprfunc>(ResultRepr);

  SandboxType.tp_name = "brig._native.Sandbox";
  SandboxType.tp_basicsize = sizeof(SandboxObject);
  SandboxType.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE;
  SandboxType.tp_doc = "One isolated CPython interpreter (WebAssembly) in this process.";
  SandboxType.tp_new = SandboxNew;
  SandboxType.tp_init = reinterpret_cast<initproc>(SandboxInit);
  SandboxType.tp_dealloc = reinterpret_cast<destructor>(SandboxDealloc);
  SandboxType.tp_methods = kSandboxMethods;
  SandboxType.tp_getset = kSandboxGetSet;
  SandboxType.tp_weaklistoffset = offsetof(SandboxObject, weakrefs);

  SessionsType.tp_name = "brig._native.Sessions";
  SessionsType.tp_basicsize = sizeof(SessionsObject);
  SessionsType.tp_flags = Py_TPFLAGS_DEFAULT;
  SessionsType.tp_doc = "Persistent sessions over a store (sqlite:PATH or postgresql://...).";
  SessionsType.tp_new = SessionsNew;
  SessionsType.tp_init = reinterpret_cast<initproc>(SessionsInit);
  SessionsType.tp_dealloc = reinterpret_cast<destructor>(SessionsDealloc);
  SessionsType.tp_methods = kSessionsMethods;

  if (PyType_Ready(&ResultType) < 0 || PyType_Ready(&SandboxType) < 0 || PyType_Ready(&SessionsType) < 0)
    return nullptr;
  PyObject* m = PyModule_Create(&kModule);
  if (!m) return nullptr;
  if (PyModule_AddObjectRef(m, "ExecutionResult", reinterpret_cast<PyObject*>(&ResultType)) < 0 ||
      PyModule_AddObjectRef(m, "Sandbox", reinterpret_cast<PyObject*>(&SandboxType)) < 0 ||
      PyModule_AddObjectRef(m, "Sessions", reinterpret_cast<PyObject*>(&SessionsType)) < 0) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}
