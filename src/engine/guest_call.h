/* Running guest code under trap protection. The only way brig enters the guest. */
#ifndef BRIG_ENGINE_GUEST_CALL_H_
#define BRIG_ENGINE_GUEST_CALL_H_

#include <pthread.h>
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
  BRIG_CALL_INTERRUPTED = 3, /* brig_call_interrupt() stopped it (e.g. a timeout) */
} brig_call_status;

typedef struct {
  brig_call_status status;
  wasm_rt_trap_t trap;
  uint32_t exit_code;
} brig_call_outcome;

/* Lets another thread stop a guest call (timeouts). Zero-initialise; one per sandbox. A
 * control may be reused for later calls once brig_call_control_reset() cleared it. */
typedef struct {
  volatile int interrupted; /* set by brig_call_interrupt; read by the running thread */
  volatile int running;     /* a guest call under this control is in progress */
  pthread_t thread;         /* valid while running */
} brig_call_control;

/* Asks the guest call running under `control` (if any) to stop. Thread-safe; callable from
 * any thread. Guest code stops at once (a signal to its thread); a WASI import in progress
 * finishes first (host sleeps are woken by the caller's own means) and the call stops when
 * it returns to guest code. A call that starts after this returns BRIG_CALL_INTERRUPTED
 * at once, until brig_call_control_reset(). */
void brig_call_interrupt(brig_call_control* control);
void brig_call_control_reset(brig_call_control* control);

/* Marks the current thread as running host code inside a guest call (WASI imports call these
 * around their work): an interrupt waits for brig_host_leave, which leaves the guest call
 * then (a longjmp; REQUIRES no live C++ object with a destructor in the caller's frame). */
void brig_host_enter(void);
void brig_host_leave(void);

/* Calls fn(arg), which runs guest code of the instance whose linear memory is `memory`.
 * A trap (bad memory access, unreachable, stack exhaustion, ...) or proc_exit inside it
 * unwinds back here by longjmp; the outcome says which. The thread is prepared on first use
 * (alternate signal stack). Re-entrant calls on one thread are not supported.
 * REQUIRES: fn does not create C++ objects with destructors that a trap could skip
 * (keep fn a plain C trampoline). */
brig_call_outcome brig_guest_call(wasm_rt_memory_t* memory, void (*fn)(void*), void* arg);
/* The same, stoppable through `control` (may be NULL). */
brig_call_outcome brig_guest_call_controlled(wasm_rt_memory_t* memory, void (*fn)(void*), void* arg,
                                            brig_call_control* control);

/* Sets up `memory` as a copy-on-write view of an image: a new reservation (like
 * wasm_rt_allocate_memory) whose first `bytes` map `fd` privately, so pages are shared with
 * the image until written. `pages` = bytes / 64 KiB; growth up to `max_pages` as usual.
 * Returns 0 on success, -1 (nothing allocated) if the kernel refuses. */
int brig_rt_map_memory_image(wasm_rt_memory_t* memory, int fd, uint32_t bytes, uint32_t max_pages);

/* One file mapping of brig_rt_map_memory_layers: `length` bytes at `offset` in the memory come
 * (copy-on-write) from `fd` at `file_offset`. Offsets and lengths are multiples of 4 KiB. */
typedef struct {
  uint64_t offset, length;
  int fd;
  uint64_t file_offset;
} brig_rt_mapping;

/* Like brig_rt_map_memory_image, from several files: each mapping, in order (later ones over
 * earlier ones), privately over a new reservation whose first `bytes` are accessible. Every
 * byte of [0, bytes) must be covered by some mapping. 0, or -1 (nothing allocated). */
int brig_rt_map_memory_layers(wasm_rt_memory_t* memory, const brig_rt_mapping* maps, uint32_t count,
                              uint32_t bytes, uint32_t max_pages);

/* Growth files. A memory made from an image grows into a file of its own (a memfd mapped
 * shared past its current end, created on the first growth) instead of anonymous memory, so
 * that what it grew into can later be frozen and shared copy-on-write without a copy.
 * Registers `memory` (its current end is where the file will start). 0, or -1 (no memory). */
int brig_rt_memory_use_growth_file(wasm_rt_memory_t* memory);
/* Freezes what the memory grew into since the file started: that range becomes a private
 * (copy-on-write) mapping of the file, the file is sealed and returned (the caller owns the
 * reference), *start is where it begins in the memory, and a later growth starts a new file.
 * NULL when there is nothing to freeze (*error = 0) or on failure (*error = 1: the memory's
 * mapping may be damaged and must be discarded). REQUIRES: no guest call on the memory. */
struct brig_mem_file;
struct brig_mem_file* brig_rt_memory_freeze_growth(wasm_rt_memory_t* memory, uint64_t* start, int* error);

/* Changes how far `memory` may grow (64 KiB pages, at most 65536), e.g. a per-execution
 * memory limit. -1 (nothing changed) if `max_pages` is below its current size, or if the
 * mapping of its growth file cannot be extended (the memory stays as it was). REQUIRES: no
 * guest call on the memory. */
int brig_rt_memory_set_max_pages(wasm_rt_memory_t* memory, uint32_t max_pages);

/* Shrinks an image-backed memory back to its first `bytes` (a multiple of 64 KiB): its growth
 * file is dropped and every address past `bytes` is unallocated again (inaccessible, zeros
 * once grown into), as in a new reservation. The first `bytes` are untouched. 0, or -1 (the
 * mapping may be broken: free the memory). */
int brig_rt_memory_reset(wasm_rt_memory_t* memory, uint32_t bytes);

/* The largest memory (in 64 KiB pages) that instances created on this thread from now on may
 * grow to; 0 means the module's own maximum. Applied by wasm_rt_allocate_memory. */
void brig_rt_set_memory_limit_pages(uint32_t pages);

#ifdef __cplusplus
}
#endif

#endif
