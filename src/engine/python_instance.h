/* One instance of the guest module (CPython as WebAssembly): its linear memory, globals and
 * table, and typed calls into its exports, each run under trap protection.
 *
 * This is the only file that knows the layout wasm2c generated for the guest. C, because the
 * generated code is C and a trap longjmps through these frames.
 *
 * Thread-safety: an instance is used by one thread at a time; different instances may run
 * on different threads at once. */
#ifndef BRIG_ENGINE_PYTHON_INSTANCE_H_
#define BRIG_ENGINE_PYTHON_INSTANCE_H_

#include <stdint.h>

#include "engine/guest_call.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct brig_python_instance brig_python_instance;

/* Instantiates the guest. `wasi_context` (a brig::wasi::WasiContext*) must outlive the
 * instance. The linear memory may grow to `memory_limit_pages` 64 KiB pages at most (0: the
 * module's own maximum). Returns NULL if out of host memory. */
brig_python_instance* brig_python_instance_create(void* wasi_context, uint32_t memory_limit_pages);
void brig_python_instance_destroy(brig_python_instance*);

/* An image: an instance's state (memory, globals, table) captured once so that new
 * instances start from it in microseconds, sharing its memory copy-on-write instead of
 * starting CPython. The image's memory lives in a sealed memfd; zero pages cost nothing.
 * Immutable once made: clones may be made from several threads at once. */
typedef struct brig_python_image brig_python_image;

/* Captures `p` as it is now. REQUIRES: no guest call in progress on `p`. NULL if the host
 * is out of memory or file descriptors. `p` may be destroyed afterwards. */
brig_python_image* brig_python_image_capture(brig_python_instance* p);
void brig_python_image_destroy(brig_python_image* image);
/* Bytes of linear memory in the image (the least memory a clone needs). */
uint64_t brig_python_image_memory_bytes(const brig_python_image* image);

/* Learns which pages a typical execution writes, from `probe` (a clone of `image` that has
 * just run one): those pages are the image's warm set, which later clones fault in with one
 * madvise(MADV_POPULATE_WRITE) per range instead of one page fault each. Call before the
 * image is shared. Returns the number of warm pages, or -1 if /proc/self/pagemap cannot be
 * read (the image then simply has no warm set). */
int brig_python_image_learn_warm_pages(brig_python_image* image, brig_python_instance* probe);

/* A new instance in exactly the captured state, its memory a private copy-on-write mapping
 * of the image, its table its own (entries point at the clone). It needs no initialisation.
 * `wasi_context` must present the same descriptors the captured instance had. NULL on
 * failure. */
brig_python_instance* brig_python_instance_clone(const brig_python_image* image, void* wasi_context,
                                                 uint32_t memory_limit_pages);

/* Every later call on this instance runs under `control` (NULL: none), so that another
 * thread can interrupt it (brig_call_interrupt). `control` must outlive its use here. */
void brig_python_instance_set_control(brig_python_instance*, brig_call_control* control);

/* The guest's linear memory (owned by the instance). */
wasm_rt_memory_t* brig_python_instance_memory(brig_python_instance*);

/* Export calls. Results from the guest are untrusted: they are written to *out only when
 * the call returned, and callers must range-check guest pointers before use. */
brig_call_outcome brig_python_initialize(brig_python_instance*, int32_t* status_out);
brig_call_outcome brig_python_alloc(brig_python_instance*, uint32_t size, uint32_t* ptr_out);
brig_call_outcome brig_python_free(brig_python_instance*, uint32_t ptr);
brig_call_outcome brig_python_execute(brig_python_instance*, uint32_t code, uint32_t code_len,
                                      uint32_t filename, uint32_t filename_len, int32_t* len_out);
brig_call_outcome brig_python_result(brig_python_instance*, uint32_t* ptr_out);

/* The guest build id (Debian revision of CPython plus a hash of module and stdlib). */
const char* brig_python_build_id(void);

#ifdef __cplusplus
}
#endif

#endif
