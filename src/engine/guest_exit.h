/* How a WASI import leaves guest execution for good (proc_exit). */
#ifndef BRIG_ENGINE_GUEST_EXIT_H_
#define BRIG_ENGINE_GUEST_EXIT_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Ends the current guest call with `exit_code`, as a longjmp to the thread's jump target.
 * REQUIRES: called on a thread inside brig_guest_call(), from a frame with no live C++
 * object that has a destructor (the jump skips destructors). */
__attribute__((noreturn)) void brig_guest_exit(uint32_t exit_code);

#ifdef __cplusplus
}
#endif

#endif
