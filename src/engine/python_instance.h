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

/* Captures `p` as it is now: its memory and globals. Its function table is not copied: every
 * image's clones use the module's own (rebuilt from the module's element segment once per
 * process), and capture checks that `p`'s is exactly that. REQUIRES: no guest call in
 * progress on `p`. NULL if the host is out of memory or file descriptors, or `p`'s table is
 * not the module's. `p` may be destroyed afterwards. */
brig_python_image* brig_python_image_capture(brig_python_instance* p);
void brig_python_image_destroy(brig_python_image* image);
/* Bytes of linear memory in the image (the least memory a clone needs). */
uint64_t brig_python_image_memory_bytes(const brig_python_image* image);
/* The seed of the random stream the guest read while the image was made (its string-hash
 * secret, and anything else it drew at start-up, derive from it): recorded with the image
 * (the image cache saves it), for the record. 0 until set. */
void brig_python_image_set_random_seed(brig_python_image* image, uint64_t seed);
uint64_t brig_python_image_random_seed(const brig_python_image* image);

/* Learns which pages a typical execution writes, from `probe` (a clone of `image` that has
 * just run one): those pages are the image's warm set, which later clones fault in with one
 * madvise(MADV_POPULATE_WRITE) per range instead of one page fault each. Call before the
 * image is shared. Returns the number of warm pages, or -1 if /proc/self/pagemap cannot be
 * read (the image then simply has no warm set).
 * From then on (and for an image loaded from the image cache) destroying a clone of `image`
 * does not unmap its memory: it is reset to the image (warm pages copied back and kept
 * private, the others dropped, what it grew into unmapped) and kept, a few at most, for the
 * next clones, which then skip the mapping and the page faults. REQUIRES: the image outlives
 * its clones; brig_python_image_destroy frees what it kept. */
int brig_python_image_learn_warm_pages(brig_python_image* image, brig_python_instance* probe);

/* How many reset memories are kept for `image` now (see brig_python_image_learn_warm_pages;
 * for tests). */
uint32_t brig_python_image_kept_memories(const brig_python_image* image);

/* A new instance in exactly the captured state, its memory a private copy-on-write mapping
 * of the image, its table the module's (shared, read-only). It needs no initialisation.
 * `wasi_context` must present the same descriptors the captured instance had. NULL on
 * failure. */
brig_python_instance* brig_python_instance_clone(const brig_python_image* image, void* wasi_context,
                                                 uint32_t memory_limit_pages);

/* ---- States: an instance's memory and globals frozen, to go back to or to fork from ----
 *
 * A state is immutable and reference-counted; instances made from it share its pages
 * copy-on-write. Only instances that started from an image (clones, and instances made from
 * states) have states. Thread-safety: a state may be used by several threads at once. */
typedef struct brig_python_state brig_python_state;

/* A checkpoint of `p`: cheap to take and small to keep. What `p` grew into is frozen in
 * place (no copy; `p` goes on with its own copy-on-write copies of those pages), and the
 * pages `p` changed in its image range or over earlier frozen growth are recorded as their
 * differences from those (typically tens of bytes per page). NULL if `p` did not start from an
 * image, memory is short, or /proc/self/pagemap cannot be read; if *damaged is set too, `p`'s
 * mapping may be broken and `p` must not be run again. REQUIRES: no guest call on `p`. */
brig_python_state* brig_python_instance_checkpoint(brig_python_instance* p, int* damaged);

/* A state of `p` that other instances map directly: like a checkpoint, but the pages `p`
 * changed are copied once into a new sealed memfd (a layer; runs of changed pages a few
 * unchanged pages apart are merged, so that an instance maps at most a few dozen files).
 * Making one costs a copy of those pages; making instances from it costs a few mmap calls.
 * NULL as for brig_python_instance_checkpoint. REQUIRES: no guest call on `p`. */
brig_python_state* brig_python_instance_share(brig_python_instance* p, int* damaged);

/* A new instance in exactly the state `s` holds (memory contents and size, globals; its
 * table is the image's). `wasi_context` must present the descriptors the state's instance
 * had. It may grow up to `memory_limit_pages` (at least the state's size). NULL on failure. */
brig_python_instance* brig_python_instance_from_state(const brig_python_state* s, void* wasi_context,
                                                      uint32_t memory_limit_pages);

/* The state `p` was made in, for free: its backing (image, layer, segments), size and globals
 * with no recorded differences. Valid only while `p` has changed nothing (a fresh clone whose
 * pre-faulted pages still hold the image's bytes). NULL for an instance without an image. */
brig_python_state* brig_python_instance_base_state(brig_python_instance* p);
/* 1 if `p` started from an image (it can have states), 0 if it was created cold. */
int brig_python_instance_has_image(const brig_python_instance* p);

brig_python_state* brig_python_state_ref(brig_python_state* s);
void brig_python_state_release(brig_python_state* s);
/* Memory size of the state, in bytes. */
uint64_t brig_python_state_memory_bytes(const brig_python_state* s);
/* Pages an instance made from the state writes when it is made (its recorded differences). */
uint32_t brig_python_state_delta_pages(const brig_python_state* s);
/* Host memory the state alone keeps alive: its recorded differences plus the pages of the
 * layer it made (0 for a layer shared with the instance it came from). */
uint64_t brig_python_state_private_bytes(const brig_python_state* s);
/* Files the state maps (image, growth segments, layer runs): an instance made from it has
 * about this many mappings. */
uint32_t brig_python_state_mapping_count(const brig_python_state* s);

/* A number that identifies `p` in this process: never reused by a later instance. */
uint64_t brig_python_instance_id(const brig_python_instance* p);
/* 1 if a walk of /proc/self/pagemap would miss pages of `p` that differ from the image: `p`
 * maps a fork's layer (its pages in the image range are file pages that are not the image's),
 * or memory it grew into was frozen (brig_python_instance_share) and is not yet mapped in the
 * page tables (brig_python_instance_populate maps it). brig_python_instance_changed_pages
 * lists every such page either way. */
int brig_python_instance_layered(const brig_python_instance* p);
/* Maps the data pages of `p`'s frozen growth files into its page tables (read-only, shared
 * with the files), so that /proc/self/pagemap shows them as present. Checkpoints do this;
 * forks leave it to the next checkpoint or to this call (it costs ~0.5 µs a page). Does
 * nothing for an instance made from a fork's layer. */
void brig_python_instance_populate(brig_python_instance* p);

/* Gives back the pages of `p`'s image range that it wrote but that hold the image's bytes
 * again (reference counts that went up and back down, ...): they become the image's file
 * pages once more. The memory's contents do not change. Does nothing for a layered instance.
 * Returns the number of pages given back, or -1 (pagemap unreadable). REQUIRES: no guest call
 * on `p`. */
int64_t brig_python_instance_trim(brig_python_instance* p);

/* Calls visit(ctx, first, count) for each run of pages of `p`'s memory that may differ from
 * the image, in ascending order: the pages `p` wrote, and the pages mapped from a layer or
 * from a frozen growth file (these hold data even where not yet present in the page tables).
 * For page snapshots of layered instances. Returns 0, -1 (pagemap unreadable, out of memory)
 * or the visitor's non-zero value. REQUIRES: no guest call on `p`. */
typedef int (*brig_python_page_runs)(void* ctx, uint64_t first, uint64_t count);
int brig_python_instance_changed_pages(brig_python_instance* p, brig_python_page_runs visit, void* ctx);

/* Every later call on this instance runs under `control` (NULL: none), so that another
 * thread can interrupt it (brig_call_interrupt). `control` must outlive its use here. */
void brig_python_instance_set_control(brig_python_instance*, brig_call_control* control);

/* Sets how far `p`'s memory may grow from now on: `memory_limit_pages` 64 KiB pages (0 or
 * more than the module allows: the module's maximum). 0, or -1 (nothing changed) if the
 * memory is already larger than that or its mapping cannot be extended. REQUIRES: no guest
 * call on `p`. */
int brig_python_instance_set_memory_limit(brig_python_instance* p, uint32_t memory_limit_pages);

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
