/* Running guest code under trap protection. The only way brig enters the guest. */
#ifndef BRIG_ENGINE_GUEST_CALL_H_
#define BRIG_ENGINE_GUEST_CALL_H_

#include <stdint.h>

#include "engine/wasm-rt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How a guest call ended. */
typedef enum {
  BRIG_CALL_RETURNED = 0, /* the guest function returned normally */
  BRIG_CALL_TRAPPED = 1,  /* a trap: `trap` says which */
  BRIG_CALL_EXITED = 2,   /* the guest called proc_exit: `exit_code` holds its code */
} brig_call_status;

typedef struct {
  brig_call_status status;
  wasm_rt_trap_t trap;
  uint32_t exit_code;
} brig_call_outcome;

/* Calls fn(arg), which runs guest code of the instance whose linear memory is `memory`.
 * A trap (bad memory access, unreachable, stack exhaustion, ...) or proc_exit inside it
 * unwinds back here by longjmp; the outcome says which. The thread is prepared on first use
 * (alternate signal stack). Re-entrant calls on one thread are not supported.
 * REQUIRES: fn does not create C++ objects with destructors that a trap could skip
 * (keep fn a plain C trampoline). */
brig_call_outcome brig_guest_call(wasm_rt_memory_t* memory, void (*fn)(void*), void* arg);

/* The largest memory (in 64 KiB pages) that instances created on this thread from now on may
 * grow to; 0 means the module's own maximum. Applied by wasm_rt_allocate_memory. */
void brig_rt_set_memory_limit_pages(uint32_t pages);

#ifdef __cplusplus
}
#endif

#endif
