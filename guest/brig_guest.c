/* brig's guest entry points: CPython built as a WASI reactor exports these instead of main.
 *
 * Protocol (host side: src/sandbox/guest.cc):
 *   _initialize()               wasi-libc constructors (the reactor's start)
 *   brig_init() -> 0 | -1       start the interpreter and import the runner
 *   brig_alloc(n) -> ptr        guest buffer for the host to write code into
 *   brig_execute(ptr, len, fn_ptr, fn_len) -> n | -1
 *                               run UTF-8 code in __main__; the result is a JSON document
 *                               of n bytes at brig_result()
 *   brig_free(ptr)
 * Everything the host reads back (the result bytes) is untrusted by the host. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

#define EXPORT(name) __attribute__((export_name(#name)))

static PyObject* g_execute;     /* _brig_runner.execute */
static PyObject* g_last_result; /* bytes of the last result, kept alive for brig_result() */

EXPORT(brig_alloc) void* brig_alloc(uint32_t size) { return malloc(size ? size : 1); }
EXPORT(brig_free) void brig_free(void* p) { free(p); }

static int fail(const char* what, PyStatus status) {
  if (PyStatus_Exception(status)) {
    fprintf(stderr, "brig guest: %s: %s\n", what, status.err_msg ? status.err_msg : "failed");
  }
  return -1;
}

EXPORT(brig_init) int32_t brig_init(void) {
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
    g_last_result = PyUnicode_AsUTF8String(result);
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
