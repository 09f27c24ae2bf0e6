/* brig's guest entry points: CPython built as a WASI reactor exports these instead of main.
 *
 * Protocol (host side: src/sandbox/guest.cc):
 *   _initialize()               wasi-libc constructors (the reactor's start)
 *   brig_init() -> 0 | -1       start the interpreter and import the runner
 *   brig_alloc(n) -> ptr        guest buffer for the host to write code into
 *   brig_execute(ptr, len, fn_ptr, fn_len) -> n | -1
 *                               run UTF-8 code in __main__; the result is a JSON document
 *                               of n bytes at brig_result(); n == 0: it succeeded and its
 *                               value (if any) was None, nothing more to say
 *   brig_free(ptr)
 * Everything the host reads back (the result bytes) is untrusted by the host. */
#define PY_SSIZE_T_CLEAN
#define Py_BUILD_CORE 1 /* linked into the interpreter: its parser and compiler's C API */
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal/pycore_ast.h"
#include "internal/pycore_compile.h"
#include "internal/pycore_parser.h"
#include "internal/pycore_pyarena.h"

#define EXPORT(name) __attribute__((export_name(#name)))

static PyObject* g_execute;     /* _brig_runner.execute */
static PyObject* g_last_result; /* bytes of the last result, kept alive for brig_result() */

EXPORT(brig_alloc) void* brig_alloc(uint32_t size) { return malloc(size ? size : 1); }
EXPORT(brig_free) void brig_free(void* p) { free(p); }

/* _brig.compile_repl(source: str, filename: str) -> (code, has_value)
 * Compiles user code as a module, the way compile(source, filename, "exec") does, except that
 * if its last statement is an expression, its value is stored in __main__'s RESULT_NAME
 * (has_value is then True) so that the runner can show it as the REPL does. Done on the C
 * AST: going through the ast module (parse to Python objects, convert back, a second compile
 * for the last expression) took about half of a small execution's time. */
#define RESULT_NAME "__brig_result__"

static PyObject* compile_repl(PyObject* self, PyObject* args) {
  (void)self;
  PyObject* source;
  PyObject* filename;
  if (!PyArg_ParseTuple(args, "UU:compile_repl", &source, &filename)) return NULL;
  Py_ssize_t size;
  const char* text = PyUnicode_AsUTF8AndSize(source, &size);
  if (!text) return NULL;
  if (strlen(text) != (size_t)size) { /* the parser reads a C string: no hidden tail */
    PyErr_SetString(PyExc_ValueError, "source code string cannot contain null bytes");
    return NULL;
  }
  PyArena* arena = _PyArena_New();
  if (!arena) return NULL;
  PyObject* result = NULL;
  PyCompilerFlags flags = _PyCompilerFlags_INIT;
  flags.cf_flags = PyCF_SOURCE_IS_UTF8 | PyCF_IGNORE_COOKIE; /* as compile() does for a str */
  mod_ty mod = _PyParser_ASTFromString(text, filename, Py_file_input, &flags, arena);
  if (!mod) goto done;
  int has_value = 0;
  asdl_stmt_seq* body = mod->v.Module.body;
  Py_ssize_t n = asdl_seq_LEN(body);
  stmt_ty last = n > 0 ? asdl_seq_GET(body, n - 1) : NULL;
  if (last && last->kind == Expr_kind) {
    PyObject* id = PyUnicode_InternFromString(RESULT_NAME);
    if (!id) goto done;
    if (_PyArena_AddPyObject(arena, id) < 0) { /* steals `id` only when it succeeds */
      Py_DECREF(id);
      goto done;
    }
    expr_ty target = _PyAST_Name(id, Store, last->lineno, last->col_offset, last->end_lineno,
                                 last->end_col_offset, arena);
    asdl_expr_seq* targets = _Py_asdl_expr_seq_new(1, arena);
    if (!target || !targets) goto done;
    asdl_seq_SET(targets, 0, target);
    stmt_ty assign = _PyAST_Assign(targets, last->v.Expr.value, NULL, last->lineno, last->col_offset,
                                   last->end_lineno, last->end_col_offset, arena);
    if (!assign) goto done;
    asdl_seq_SET(body, n - 1, assign);
    has_value = 1;
  }
  PyCodeObject* code = _PyAST_Compile(mod, filename, &flags, -1, arena);
  if (code) result = Py_BuildValue("(Ni)", (PyObject*)code, has_value);
done:
  _PyArena_Free(arena);
  return result;
}

/* brig's host call for a pipe inside the sandbox (src/wasi/wasi_context.h, BrigFdPipe): WASI
 * preview 1 has none. Imported from wasi_snapshot_preview1 so that the reactor needs no
 * second import module; returns a WASI errno, which is wasi-libc's errno value. */
__attribute__((import_module("wasi_snapshot_preview1"), import_name("brig_fd_pipe")))
extern uint16_t brig_fd_pipe(int32_t* fds);

__attribute__((import_module("wasi_snapshot_preview1"), import_name("brig_fd_dup")))
extern uint16_t brig_fd_dup(int32_t fd, int32_t min_fd, int32_t* out);
__attribute__((import_module("wasi_snapshot_preview1"), import_name("brig_fd_dup2")))
extern uint16_t brig_fd_dup2(int32_t fd, int32_t to);

static PyObject* errno_error(uint16_t e) {
  errno = e;
  return PyErr_SetFromErrno(PyExc_OSError);
}

/* _brig.pipe() -> (read_fd, write_fd): os.pipe on wasi (CPython patch 0008). */
static PyObject* brig_pipe(PyObject* self, PyObject* unused) {
  int32_t fds[2];
  uint16_t e = brig_fd_pipe(fds);
  if (e != 0) return errno_error(e);
  return Py_BuildValue("(ii)", (int)fds[0], (int)fds[1]);
}

/* _brig.dup(fd) -> new fd: os.dup on wasi (patch 0008). */
static PyObject* brig_dup(PyObject* self, PyObject* arg) {
  int fd = _PyLong_AsInt(arg);
  if (fd == -1 && PyErr_Occurred()) return NULL;
  if (fd < 0) return errno_error(EBADF);
  int32_t out = -1;
  uint16_t e = brig_fd_dup(fd, 0, &out);
  if (e != 0) return errno_error(e);
  return PyLong_FromLong(out);
}

/* _brig.dup2(fd, fd2) -> fd2: os.dup2 on wasi (patch 0008). */
static PyObject* brig_dup2(PyObject* self, PyObject* args) {
  int fd, fd2;
  if (!PyArg_ParseTuple(args, "ii", &fd, &fd2)) return NULL;
  if (fd < 0 || fd2 < 0) return errno_error(EBADF);
  uint16_t e = brig_fd_dup2(fd, fd2);
  if (e != 0) return errno_error(e);
  return PyLong_FromLong(fd2);
}

static PyMethodDef brig_methods[] = {
    {"compile_repl", compile_repl, METH_VARARGS, "compile user code; (code, has_value)"},
    {"pipe", brig_pipe, METH_NOARGS, "a pipe inside the sandbox; (read_fd, write_fd)"},
    {"dup", brig_dup, METH_O, "a duplicate of a descriptor; the lowest free number"},
    {"dup2", brig_dup2, METH_VARARGS, "(fd, fd2): make fd2 a duplicate of fd; fd2"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef brig_module = {PyModuleDef_HEAD_INIT, "_brig", NULL, -1, brig_methods};

static PyObject* init_brig_module(void) {
  PyObject* m = PyModule_Create(&brig_module);
  if (m && PyModule_AddStringConstant(m, "RESULT_NAME", RESULT_NAME) < 0) Py_CLEAR(m);
  return m;
}

PyMODINIT_FUNC PyInit__imaging(void);
PyMODINIT_FUNC PyInit__imagingft(void);
PyMODINIT_FUNC PyInit__imagingmath(void);
PyMODINIT_FUNC PyInit__imagingmorph(void);
PyMODINIT_FUNC PyInit_etree(void); /* lxml.etree */

static int fail(const char* what, PyStatus status) {
  if (PyStatus_Exception(status)) {
    fprintf(stderr, "brig guest: %s: %s\n", what, status.err_msg ? status.err_msg : "failed");
  }
  return -1;
}

EXPORT(brig_init) int32_t brig_init(void) {
  if (PyImport_AppendInittab("_brig", init_brig_module) < 0) return -1;
  /* Pillow's C modules (guest/build-pillow.sh), builtin: the sandbox has no dlopen. Found by
     the finder that brig's patch adds to PIL/__init__.py; nothing is imported at start-up. */
  if (PyImport_AppendInittab("PIL._imaging", PyInit__imaging) < 0 ||
      PyImport_AppendInittab("PIL._imagingft", PyInit__imagingft) < 0 ||
      PyImport_AppendInittab("PIL._imagingmath", PyInit__imagingmath) < 0 ||
      PyImport_AppendInittab("PIL._imagingmorph", PyInit__imagingmorph) < 0) return -1;
  /* lxml.etree with libxml2 and libxslt (guest/build-lxml.sh), the same way: found by the
     finder that brig's patch adds to lxml/__init__.py. */
  if (PyImport_AppendInittab("lxml.etree", PyInit_etree) < 0) return -1;
  PyPreConfig pre;
  PyPreConfig_InitIsolatedConfig(&pre);
  pre.utf8_mode = 1; /* output and file names are UTF-8 whatever the (absent) locale says */
  PyStatus st = Py_PreInitialize(&pre);
  if (PyStatus_Exception(st)) return fail("pre-initialise", st);

  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  config.site_import = 0;           /* no site-packages in the sandbox */
  config.write_bytecode = 0;        /* the stdlib is read-only and precompiled */
  config.install_signal_handlers = 0;
  config.pathconfig_warnings = 0;
  config.parse_argv = 0;
  /* Writes go straight to the host (a function call, not a syscall): what was printed before
   * a timeout or a trap is not lost in a buffer. */
  config.buffered_stdio = 0;
  st = PyConfig_SetString(&config, &config.home, L"/usr/local");
  if (!PyStatus_Exception(st)) st = PyConfig_SetString(&config, &config.program_name, L"python3");
  if (!PyStatus_Exception(st)) {
    wchar_t* argv[] = {L""};
    st = PyConfig_SetArgv(&config, 1, argv);
  }
  if (!PyStatus_Exception(st)) st = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(st)) return fail("initialise", st);

  PyObject* runner = PyImport_ImportModule("_brig_runner");
  if (runner) {
    g_execute = PyObject_GetAttrString(runner, "execute");
    Py_DECREF(runner);
  }
  if (!g_execute) {
    PyErr_Print();
    return -1;
  }
  return 0;
}

EXPORT(brig_execute)
int32_t brig_execute(const char* code, uint32_t code_len, const char* filename, uint32_t filename_len) {
  if (!g_execute) return -1;
  Py_CLEAR(g_last_result);
  PyObject* result = PyObject_CallFunction(g_execute, "y#y#", code, (Py_ssize_t)code_len, filename,
                                           (Py_ssize_t)filename_len);
  if (result && PyUnicode_Check(result)) {
    g_last_result = PyUnicode_AsUTF8String(result); /* empty: succeeded, no value */
  }
  Py_XDECREF(result);
  if (!g_last_result) {
    PyErr_Print();
    return -1;
  }
  return (int32_t)PyBytes_GET_SIZE(g_last_result);
}

EXPORT(brig_result) const char* brig_result(void) {
  return g_last_result ? PyBytes_AS_STRING(g_last_result) : NULL;
}
