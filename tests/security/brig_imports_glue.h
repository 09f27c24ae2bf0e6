// For tests that call brig's own host calls through the extern "C" entry points the generated
// guest calls (src/wasi/brig_imports.cc, compiled in here): the host-call bracketing they use
// counts depth in the test (the engine's version lives in runtime.c). Include once per test
// binary.
#ifndef BRIG_TESTS_SECURITY_BRIG_IMPORTS_GLUE_H_
#define BRIG_TESTS_SECURITY_BRIG_IMPORTS_GLUE_H_

static int g_host_depth;
extern "C" void brig_host_enter(void) { ++g_host_depth; }
extern "C" void brig_host_leave(void) { --g_host_depth; }
#include "wasi/brig_imports.cc"

#endif
