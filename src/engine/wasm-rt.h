/*
 * brig's own wasm2c runtime interface (the "wasm-rt.h" that wasm2c 1.0.32's generated code
 * includes). The generated guest code calls the functions declared here; brig implements them
 * in runtime.c. Differences from Debian's libwasm-rt-impl:
 *   - trap state (the jump target) is thread-local, and each thread that runs guest code has
 *     its own alternate signal stack, so several sandboxes run at once on different threads;
 *   - linear memory is a 4 GiB reservation plus a 4 GiB guard: every 32-bit address plus a
 *     32-bit offset lands inside it, so out-of-bounds accesses fault and become traps, with no
 *     explicit check in the generated code;
 *   - a fault outside guest memory and outside guest execution is not swallowed: the process
 *     crashes as it would without brig.
 *
 * Configuration (fixed; other combinations are an error):
 *   WASM_RT_MEMCHECK_SIGNAL_HANDLER 1   bounds by guard pages + SIGSEGV
 *   WASM_RT_USE_STACK_DEPTH_COUNT   0   native stack exhaustion found by its guard page
 */
#ifndef BRIG_ENGINE_WASM_RT_H_
#define BRIG_ENGINE_WASM_RT_H_

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef __has_builtin
#define __has_builtin(x) 0
#endif
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define wasm_rt_memcpy __builtin_memcpy
#define wasm_rt_unreachable __builtin_unreachable

#if defined(WASM_RT_MEMCHECK_SIGNAL_HANDLER) && !WASM_RT_MEMCHECK_SIGNAL_HANDLER
#error "brig's runtime only supports guard-page bounds checking"
#endif
#define WASM_RT_MEMCHECK_SIGNAL_HANDLER 1
#define WASM_RT_SKIP_SIGNAL_RECOVERY 0
#define WASM_RT_SIGNAL_RECOVERY_SUPPORTED 1
#if defined(WASM_RT_USE_STACK_DEPTH_COUNT) && WASM_RT_USE_STACK_DEPTH_COUNT
#error "brig's runtime detects stack exhaustion with the thread's guard page"
#endif
#define WASM_RT_USE_STACK_DEPTH_COUNT 0
#define WASM_RT_MERGED_OOB_AND_EXHAUSTION_TRAPS 0
#define WASM_RT_NO_RETURN __attribute__((noreturn))

/* Why guest execution stopped. The numbering is wasm2c's. */
typedef enum {
  WASM_RT_TRAP_NONE,
  WASM_RT_TRAP_OOB,                /* out-of-bounds memory or table access */
  WASM_RT_TRAP_INT_OVERFLOW,       /* integer overflow on divide or truncation */
  WASM_RT_TRAP_DIV_BY_ZERO,        /* integer divide by zero */
  WASM_RT_TRAP_INVALID_CONVERSION, /* float NaN to integer */
  WASM_RT_TRAP_UNREACHABLE,        /* `unreachable` executed (e.g. abort() in the guest) */
  WASM_RT_TRAP_CALL_INDIRECT,      /* bad call_indirect: null, out of range, wrong type */
  WASM_RT_TRAP_UNCAUGHT_EXCEPTION, /* wasm exception escaped (unused by brig's guest) */
  WASM_RT_TRAP_EXHAUSTION,         /* native call stack exhausted */
} wasm_rt_trap_t;

typedef enum {
  WASM_RT_I32,
  WASM_RT_I64,
  WASM_RT_F32,
  WASM_RT_F64,
  WASM_RT_FUNCREF,
  WASM_RT_EXTERNREF,
} wasm_rt_type_t;

typedef void (*wasm_rt_function_ptr_t)(void);

/* A table entry: the function, its registered type and the instance it closes over. */
typedef struct {
  uint32_t func_type;
  wasm_rt_function_ptr_t func;
  void* module_instance;
} wasm_rt_funcref_t;

static const wasm_rt_funcref_t wasm_rt_funcref_null_value = {0, NULL, NULL};
typedef void* wasm_rt_externref_t;
static const wasm_rt_externref_t wasm_rt_externref_null_value = NULL;

/* A linear memory. `data` never moves (growth only changes protection), so a pointer into
 * it stays valid while the memory lives; `size` (bytes) = `pages` * 65536. */
typedef struct {
  uint8_t* data;
  uint32_t pages, max_pages;
  uint32_t size;
} wasm_rt_memory_t;

typedef struct {
  wasm_rt_funcref_t* data;
  uint32_t max_size;
  uint32_t size;
} wasm_rt_funcref_table_t;

typedef struct {
  wasm_rt_externref_t* data;
  uint32_t max_size;
  uint32_t size;
} wasm_rt_externref_table_t;

/* Process-wide: installs the SIGSEGV/SIGBUS handler. Idempotent, thread-safe. */
void wasm_rt_init(void);
bool wasm_rt_is_initialized(void);
void wasm_rt_free(void);

/* Called by generated code: leaves guest execution through the current thread's jump
 * target (see engine/trap.h). REQUIRES: the thread is inside brig_guest_call(). */
WASM_RT_NO_RETURN void wasm_rt_trap(wasm_rt_trap_t);
const char* wasm_rt_strerror(wasm_rt_trap_t trap);

/* Function type registry; the same signature always gets the same index. Thread-safe. */
uint32_t wasm_rt_register_func_type(uint32_t params, uint32_t results, ...);

/* Wasm exceptions are not used by the guest; these trap if ever reached. */
uint32_t wasm_rt_register_tag(uint32_t size);
void wasm_rt_load_exception(uint32_t tag, uint32_t size, const void* values);
WASM_RT_NO_RETURN void wasm_rt_throw(void);
#define WASM_RT_UNWIND_TARGET jmp_buf
WASM_RT_UNWIND_TARGET* wasm_rt_get_unwind_target(void);
void wasm_rt_set_unwind_target(WASM_RT_UNWIND_TARGET* target);
uint32_t wasm_rt_exception_tag(void);
uint32_t wasm_rt_exception_size(void);
void* wasm_rt_exception(void);

#define WASM_RT_SETJMP(buf) sigsetjmp(buf, 1)
#define wasm_rt_try(target) WASM_RT_SETJMP(target)

/* Reserves 8 GiB (4 GiB addressable + 4 GiB guard) and makes `initial_pages` accessible.
 * `max_pages` is further capped by the limit the engine set for this thread's next
 * instantiation (brig_rt_set_memory_limit_pages). Aborts only if the reservation fails. */
void wasm_rt_allocate_memory(wasm_rt_memory_t*, uint32_t initial_pages, uint32_t max_pages);
/* Returns the old page count, or UINT32_MAX if the new size would pass max_pages. */
uint32_t wasm_rt_grow_memory(wasm_rt_memory_t*, uint32_t pages);
void wasm_rt_free_memory(wasm_rt_memory_t*);

void wasm_rt_allocate_funcref_table(wasm_rt_funcref_table_t*, uint32_t elements,
                                    uint32_t max_elements);
void wasm_rt_free_funcref_table(wasm_rt_funcref_table_t*);
void wasm_rt_allocate_externref_table(wasm_rt_externref_table_t*, uint32_t elements,
                                      uint32_t max_elements);
void wasm_rt_free_externref_table(wasm_rt_externref_table_t*);
uint32_t wasm_rt_grow_funcref_table(wasm_rt_funcref_table_t*, uint32_t delta,
                                    wasm_rt_funcref_t init);
uint32_t wasm_rt_grow_externref_table(wasm_rt_externref_table_t*, uint32_t delta,
                                      wasm_rt_externref_t init);

#ifdef __cplusplus
}
#endif

#endif /* BRIG_ENGINE_WASM_RT_H_ */
