#define _GNU_SOURCE
#include "engine/python_instance.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/memory_files.h"
#include "engine/memory_slots.h"
#include "engine/python_instance_internal.h"

extern const char brig_guest_build_id[];

static uint64_t g_next_instance_id = 1;
static uint64_t next_instance_id(void) { return __atomic_fetch_add(&g_next_instance_id, 1, __ATOMIC_RELAXED); }

static void backing_release(brig_python_backing* b);
static int keep_memory(brig_python_instance* p);
static brig_mem_file* image_file(const struct brig_python_image* img);

/* wasm2c 1.0.32's element segment entry (its wasm_elem_segment_expr_t: guest/wasm2c_post.py
 * checks that the generated code declares exactly this), and the generated static arrays
 * guest/compile-guest-c.sh exports under these names: the element segment, and the ids
 * Z_python_init_module registered for the module's function types. */
typedef struct {
  uint32_t func_type_index;
  wasm_rt_function_ptr_t func;
  size_t module_offset;
} brig_w2c_elem;
extern const brig_w2c_elem brig_w2c_elem_segment[BRIG_W2C_ELEM_COUNT];
extern uint32_t brig_w2c_func_types[BRIG_W2C_FUNC_TYPE_COUNT];

static wasm_rt_funcref_t g_module_table[BRIG_W2C_TABLE_SIZE];

/* What the generated init_tables does (funcref_table_init over the element segment), into
 * g_module_table. ~10 µs. */
static void build_module_table(void) {
  for (uint32_t i = 0; i < BRIG_W2C_ELEM_COUNT; i++) {
    const brig_w2c_elem* e = &brig_w2c_elem_segment[i];
    if (e->func_type_index >= BRIG_W2C_FUNC_TYPE_COUNT) abort(); /* not this module's segment */
    g_module_table[BRIG_W2C_ELEM_DEST + i] =
        (wasm_rt_funcref_t){brig_w2c_func_types[e->func_type_index], e->func, NULL};
  }
}

static pthread_once_t g_module_once = PTHREAD_ONCE_INIT;
static void init_module(void) {
  wasm_rt_init();
  Z_python_init_module(); /* registers function types: process-wide, once */
  build_module_table();
}

const wasm_rt_funcref_t* brig_python_module_table(void) {
  pthread_once(&g_module_once, init_module);
  return g_module_table;
}

brig_python_instance* brig_python_instance_create(void* wasi_context, uint32_t memory_limit_pages) {
  pthread_once(&g_module_once, init_module);
  brig_python_instance* p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->id = next_instance_id();
  p->wasi.context = wasi_context;
  brig_rt_set_memory_limit_pages(memory_limit_pages);
  Z_python_instantiate(&p->module, &p->wasi);
  brig_rt_set_memory_limit_pages(0);
  p->wasi.memory = Z_pythonZ_memory(&p->module);
  return p;
}

int brig_python_instance_set_memory_limit(brig_python_instance* p, uint32_t memory_limit_pages) {
  uint32_t max = BRIG_W2C_MEMORY_MAX_PAGES;
  if (memory_limit_pages && memory_limit_pages < max) max = memory_limit_pages;
  return brig_rt_memory_set_max_pages(&p->module.w2c_memory, max);
}

/* Z_python_free for an instance whose table may be its image's. */
static void free_module(brig_python_instance* p) {
  if (p->shared_table) {
    p->module.w2c_T0.data = NULL;  /* the image's, not ours */
    p->module.w2c_T0.size = 0;
  }
  Z_python_free(&p->module);
}

static void free_instance(brig_python_instance* p) {
  free(p->cand_bits);
  free_module(p);
  backing_release(&p->backing);
  free(p);
}

void brig_python_instance_destroy(brig_python_instance* p) {
  if (!p || keep_memory(p)) return;
  free_instance(p);
}

uint64_t brig_python_instance_id(const brig_python_instance* p) { return p->id; }

int brig_python_instance_layered(const brig_python_instance* p) {
  if (p->backing.layer) return 1;
  for (uint32_t i = 0; i < p->backing.segment_count; i++) {
    if (!p->backing.segments[i].populated) return 1;
  }
  return 0;
}

void brig_python_instance_set_control(brig_python_instance* p, brig_call_control* control) {
  p->control = control;
}

wasm_rt_memory_t* brig_python_instance_memory(brig_python_instance* p) { return p->wasi.memory; }

const char* brig_python_build_id(void) { return brig_guest_build_id; }

/* ---- images: a captured instance that new instances map copy-on-write ---- */



#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* 1 if `t` holds the functions of the module's table, slot for slot (the table an image's
 * clones get instead of it). */
static int is_module_table(const wasm_rt_funcref_table_t* t) {
  const wasm_rt_funcref_t* m = brig_python_module_table();
  if (t->size != BRIG_W2C_TABLE_SIZE) return 0;
  for (uint32_t i = 0; i < BRIG_W2C_TABLE_SIZE; i++) {
    if (t->data[i].func != m[i].func || t->data[i].func_type != m[i].func_type) return 0;
  }
  return 1;
}

brig_python_image* brig_python_image_capture(brig_python_instance* p) {
  /* Clones get the module's table: it must be the one `p` runs with (it always is: the
   * guest cannot change its table, and the element segment is the module's). */
  if (!is_module_table(&p->module.w2c_T0)) return NULL;
  brig_python_image* img = calloc(1, sizeof *img);
  if (!img) return NULL;
  img->memfd = -1;
  img->module = p->module;
  img->memory_bytes = p->module.w2c_memory.size;
  img->table = brig_python_module_table();
  img->table_size = BRIG_W2C_TABLE_SIZE;
  img->module.w2c_T0.data = NULL; /* `p`'s own: clones get img->table (share_table) */
  img->memfd = memfd_create("brig-image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (img->memfd < 0 || ftruncate(img->memfd, img->memory_bytes) != 0) goto fail;
  /* Zero pages stay holes in the memfd: they cost nothing to store or to map. */
  const uint8_t* data = p->module.w2c_memory.data;
  for (uint64_t off = 0; off < img->memory_bytes; off += 4096) {
    const uint64_t* w = (const uint64_t*)(data + off);
    int zero = 1;
    for (int i = 0; i < 512 && zero; i++) zero = w[i] == 0;
    if (zero) continue;
    if (pwrite(img->memfd, data + off, 4096, (off_t)off) != 4096) goto fail;
  }
  if (fcntl(img->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) goto fail;
  img->file = brig_mem_file_adopt(img->memfd, img->memory_bytes);
  if (!img->file) {
    img->memfd = -1; /* adopt closed it */
    goto fail;
  }
  return img;
fail:
  brig_python_image_destroy(img);
  return NULL;
}

uint64_t brig_python_image_memory_bytes(const brig_python_image* img) { return img->memory_bytes; }

void brig_python_image_set_random_seed(brig_python_image* img, uint64_t seed) { img->random_seed = seed; }
uint64_t brig_python_image_random_seed(const brig_python_image* img) { return img->random_seed; }

int brig_python_image_learn_warm_pages(brig_python_image* img, brig_python_instance* probe) {
  uint32_t pages = img->memory_bytes / HOST_PAGE;
  uint64_t* entries = malloc((pages ? pages : 1) * sizeof *entries);
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  uintptr_t base = (uintptr_t)probe->module.w2c_memory.data;
  off_t at = (off_t)(base / HOST_PAGE) * (off_t)sizeof(uint64_t);
  size_t want = (size_t)pages * sizeof *entries;
  int ok = entries && fd >= 0 && pread(fd, entries, want, at) == (ssize_t)want;
  if (fd >= 0) close(fd);
  if (!ok) {
    free(entries);
    return -1;
  }
  /* Written since the clone was made = present and no longer the file's page (bit 61). */
  int count = 0;
  for (uint32_t i = 0; i < pages; i++) {
    if (!(entries[i] >> 63 & 1) || (entries[i] >> 61 & 1)) continue;
    count++;
    if (img->warm_count) {
      uint32_t* last = img->warm[img->warm_count - 1];
      if (last[0] + last[1] == i) {
        last[1]++;
        continue;
      }
    }
    uint32_t (*grown)[2] = realloc(img->warm, (img->warm_count + 1) * sizeof *img->warm);
    if (!grown) break;
    img->warm = grown;
    img->warm[img->warm_count][0] = i;
    img->warm[img->warm_count][1] = 1;
    img->warm_count++;
  }
  free(entries);
  img->keep_memories = 1;
  return count;
}

static void free_kept(void* p) { free_instance(p); }

void brig_python_image_destroy(brig_python_image* img) {
  if (!img) return;
  if (img->keep_memories) brig_memory_slots_drain(img, free_kept);
  free(img->warm);
  if (img->file) brig_mem_file_unref(img->file); /* closes memfd */
  else if (img->memfd >= 0) close(img->memfd);
  free(img);
}

/* Gives `p` the image's table. Shared by all its instances, read-only: the guest has no
 * instruction that changes a table, and an indirect call runs its callee with the caller's
 * own instance rather than the one stored in the entry (both checked or rewritten by
 * guest/wasm2c_post.py), so one table serves every instance. */
static void share_table(brig_python_instance* p, const brig_python_image* img) {
  p->module.w2c_T0.data = (wasm_rt_funcref_t*)img->table; /* never written */
  p->module.w2c_T0.size = img->table_size;
  p->shared_table = 1;
}

/* ---- kept memories: destroyed clones reset to the image and reused (memory_slots.h) ---- */

uint32_t brig_python_image_kept_memories(const brig_python_image* img) { return brig_memory_slots_count(img); }

/* Puts pages [first, end) of `data` back to the image's bytes: warm pages (the next user
 * writes them) are compared and copied back, staying private and present; the others are
 * dropped, so that they read the image's file again. `*warm_at`: the first warm run that may
 * reach `first` (calls come in ascending order). Every page of the range is either dropped or
 * compared, whatever the warm runs are. */
static int reset_pages(const brig_python_image* img, brig_mem_file* f, uint8_t* data, uint32_t first,
                       uint32_t end, uint32_t* warm_at) {
  static const uint8_t kZero[HOST_PAGE];
  uint32_t at = first;
  while (at < end) {
    uint32_t i = *warm_at;
    uint32_t ws = i < img->warm_count ? img->warm[i][0] : end;
    uint32_t we = i < img->warm_count ? img->warm[i][0] + img->warm[i][1] : end;
    if (we <= at) { /* behind us */
      ++*warm_at;
      continue;
    }
    if (ws > end) ws = end;
    if (we > end) we = end;
    if (ws > at && madvise(data + (size_t)at * HOST_PAGE, (size_t)(ws - at) * HOST_PAGE, MADV_DONTNEED) != 0) {
      return -1;
    }
    if (at < ws) at = ws;
    for (; at < we; at++) {
      uint8_t* page = data + (size_t)at * HOST_PAGE;
      const uint8_t* want = brig_mem_file_page(f, at);
      if (!want) want = kZero;
      if (memcmp(page, want, HOST_PAGE) != 0) memcpy(page, want, HOST_PAGE);
    }
  }
  return 0;
}

typedef struct {
  const brig_python_image* img;
  brig_mem_file* f;
  uint8_t* data;
  uint32_t warm_at;
} reset_ctx;

static int reset_run(void* v, uint64_t first, uint64_t count) {
  reset_ctx* c = v;
  return reset_pages(c->img, c->f, c->data, (uint32_t)first, (uint32_t)(first + count), &c->warm_at) != 0;
}

/* If `p` is a clone of an image that keeps memories and a slot is free: resets its memory to
 * the image's (every page: the warm set compared, the rest dropped; nothing past the image is
 * accessible), its globals to the image's, and keeps it. Its table is the image's (shared,
 * never changed: share_table). 1 if kept. */
static int keep_memory(brig_python_instance* p) {
  const brig_python_image* img = p->backing.image;
  if (!p->plain_clone || !img || !img->keep_memories || p->backing.layer) return 0;
  if (brig_memory_slots_full()) return 0; /* do not reset for nothing */
  brig_mem_file* f = image_file(img);
  wasm_rt_memory_t* mem = &p->module.w2c_memory;
  if (!f || brig_rt_memory_reset(mem, img->memory_bytes) != 0) return 0;
  /* Only pages with private data (present or swapped out) can differ from the image; the
   * file pages stay mapped for the next user. Without PAGEMAP_SCAN: every page. */
  reset_ctx c = {img, f, mem->data, 0};
  uint32_t pages = img->memory_bytes / HOST_PAGE;
  int r = brig_private_pages(mem->data, pages, reset_run, &c);
  if (r == -1) {
    c.warm_at = 0;
    r = reset_pages(img, f, mem->data, 0, pages, &c.warm_at);
  }
  if (r != 0) return 0;
  backing_release(&p->backing); /* its growth segments were unmapped with the rest */
  p->module.w2c_g0 = img->module.w2c_g0;
  p->control = NULL;
  p->wasi.context = NULL;
  if (!brig_memory_slots_put(img, p)) return 0; /* (a race for the last slot) */
  return 1;
}

brig_python_instance* brig_python_instance_clone(const brig_python_image* img, void* wasi_context,
                                                 uint32_t memory_limit_pages) {
  pthread_once(&g_module_once, init_module); /* an image loaded from disk made no instance */
  uint32_t max = img->module.w2c_memory.max_pages;
  if (memory_limit_pages && memory_limit_pages < max) max = memory_limit_pages;
  if (max < img->module.w2c_memory.pages) max = img->module.w2c_memory.pages;
  brig_python_instance* kept = img->keep_memories ? brig_memory_slots_take(img) : NULL;
  if (kept) {
    kept->id = next_instance_id();
    kept->wasi.context = wasi_context;
    kept->module.w2c_memory.max_pages = max;
    kept->backing.image = img;
    kept->plain_clone = 1;
    if (brig_rt_memory_use_growth_file(&kept->module.w2c_memory) != 0) {
      free_instance(kept);
      return NULL;
    }
    return kept; /* its warm pages are private and present already */
  }
  brig_python_instance* p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->module = img->module;
  p->id = next_instance_id();
  p->wasi.context = wasi_context;
  p->module.Z_wasi_snapshot_preview1_instance = &p->wasi;
  wasm_rt_memory_t* mem = &p->module.w2c_memory;
  if (brig_rt_map_memory_image(mem, img->memfd, img->memory_bytes, max) != 0) {
    free(p);
    return NULL;
  }
  share_table(p, img);
  if (brig_rt_memory_use_growth_file(mem) != 0) {
    free_module(p);
    free(p);
    return NULL;
  }
  p->backing.image = img;
  p->plain_clone = 1;
  p->wasi.memory = mem;
  /* Best effort: a kernel without MADV_POPULATE_WRITE just takes the faults later. */
  for (uint32_t i = 0; i < img->warm_count; i++) {
    madvise(mem->data + (size_t)img->warm[i][0] * HOST_PAGE, (size_t)img->warm[i][1] * HOST_PAGE,
            MADV_POPULATE_WRITE);
  }
  return p;
}

/* ---- states: checkpoints and shared (forkable) states ---- */

/* The image's memory as a brig_mem_file (a view that reads holes as zeros without allocating).
 * Images captured in this process have one; an image loaded from disk gets one on first use. */
static pthread_mutex_t g_image_file_mu = PTHREAD_MUTEX_INITIALIZER;
static brig_mem_file* image_file(const brig_python_image* img) {
  pthread_mutex_lock(&g_image_file_mu);
  brig_python_image* mutable_img = (brig_python_image*)img; /* the view is a cache */
  if (!mutable_img->file) {
    int fd = dup(img->memfd);
    if (fd >= 0) mutable_img->file = brig_mem_file_adopt(fd, img->memory_bytes);
  }
  brig_mem_file* f = mutable_img->file;
  pthread_mutex_unlock(&g_image_file_mu);
  return f;
}

static brig_python_layer* layer_ref(brig_python_layer* l) {
  if (l) __atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
  return l;
}

static void layer_unref(brig_python_layer* l) {
  if (!l || __atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  brig_mem_file_unref(l->file);
  free(l->runs);
  free(l);
}

static int layer_has(const brig_python_layer* l, uint64_t page) {
  uint32_t lo = 0, hi = l->run_count;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if ((uint64_t)l->runs[mid][0] + l->runs[mid][1] <= page) lo = mid + 1;
    else hi = mid;
  }
  return lo < l->run_count && l->runs[lo][0] <= page;
}

static void backing_release(brig_python_backing* b) {
  layer_unref(b->layer);
  for (uint32_t i = 0; i < b->segment_count; i++) brig_mem_file_unref(b->segments[i].file);
  free(b->segments);
  memset(b, 0, sizeof *b);
}

/* *dst = a new reference to *src. 0, or -1 (out of memory; *dst empty). */
static int backing_copy(brig_python_backing* dst, const brig_python_backing* src) {
  memset(dst, 0, sizeof *dst);
  if (src->segment_count) {
    dst->segments = malloc(src->segment_count * sizeof *dst->segments);
    if (!dst->segments) return -1;
    for (uint32_t i = 0; i < src->segment_count; i++) {
      dst->segments[i] = src->segments[i];
      brig_mem_file_ref(dst->segments[i].file);
    }
    dst->segment_count = src->segment_count;
  }
  dst->image = src->image;
  dst->layer = layer_ref(src->layer);
  return 0;
}

/* The bytes page `page` has in `b` (what the memory shows there before any change of its
 * own), or NULL for zeros. */
static const uint8_t* backing_page(const brig_python_backing* b, uint64_t page) {
  if (b->layer && layer_has(b->layer, page)) return brig_mem_file_page(b->layer->file, page);
  uint64_t at = page * HOST_PAGE;
  if (at < b->image->memory_bytes) {
    brig_mem_file* f = image_file(b->image);
    return f ? brig_mem_file_page(f, page) : NULL;
  }
  for (uint32_t i = 0; i < b->segment_count; i++) {
    const brig_python_segment* s = &b->segments[i];
    if (at >= s->start && at < s->end) return brig_mem_file_page(s->file, (at - s->start) / HOST_PAGE);
  }
  return NULL;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

/* Maps a segment's data pages now (read-only, shared with the file): /proc/self/pagemap then
 * shows every page that holds data as present, which page snapshots (page_snapshot.c) rely
 * on to find the pages past the image that differ from zeros. Best effort. */
static void populate_segment(brig_python_instance* p, brig_python_segment* g) {
  uint8_t* base = p->module.w2c_memory.data + g->start;
  int ok = 1;
  for (uint32_t e = 0; e < brig_mem_file_extent_count(g->file); e++) {
    uint64_t first, end;
    brig_mem_file_extent(g->file, e, &first, &end);
    ok &= madvise(base + first * HOST_PAGE, (end - first) * HOST_PAGE, MADV_POPULATE_READ) == 0;
  }
  g->populated = ok;
}

typedef struct {
  brig_mem_file* image;
  uint8_t* data;
  int64_t dropped;
} trim_ctx;

/* For each page of the run: the image's bytes again? Runs of such pages are dropped. */
static int trim_run(void* v, uint64_t first, uint64_t count) {
  static const uint8_t kZero[HOST_PAGE];
  trim_ctx* c = v;
  uint64_t same_from = first + count; /* start of the current run of equal pages, if any */
  for (uint64_t page = first; page <= first + count; page++) {
    int same = 0;
    if (page < first + count) {
      const uint8_t* want = brig_mem_file_page(c->image, page);
      same = memcmp(c->data + page * HOST_PAGE, want ? want : kZero, HOST_PAGE) == 0;
    }
    if (same && same_from == first + count) same_from = page;
    if (!same && same_from < page) {
      if (madvise(c->data + same_from * HOST_PAGE, (page - same_from) * HOST_PAGE, MADV_DONTNEED) != 0) return 1;
      c->dropped += (int64_t)(page - same_from);
      same_from = first + count;
    }
  }
  return 0;
}

int64_t brig_python_instance_trim(brig_python_instance* p) {
  const brig_python_image* img = p->backing.image;
  if (!img || brig_python_instance_layered(p)) return 0;
  brig_mem_file* f = image_file(img);
  if (!f) return -1;
  trim_ctx c = {f, p->module.w2c_memory.data, 0};
  /* The image range only: past it there is no file to go back to. */
  if (brig_written_pages(c.data, img->memory_bytes / HOST_PAGE, trim_run, &c) != 0) return -1;
  return c.dropped;
}

void brig_python_instance_populate(brig_python_instance* p) {
  if (p->backing.layer) return; /* a fork is not page-snapshotted by a pagemap walk anyway */
  for (uint32_t i = 0; i < p->backing.segment_count; i++) {
    if (!p->backing.segments[i].populated) populate_segment(p, &p->backing.segments[i]);
  }
}

/* Freezes what `p` grew into (see brig_rt_memory_freeze_growth) as a new segment, mapped
 * now if `populate`. 0, or -1 (*damaged says whether `p`'s mapping is still sound). */
static int freeze_growth(brig_python_instance* p, int* damaged, int populate) {
  uint64_t start = 0;
  int error = 0;
  brig_mem_file* f = brig_rt_memory_freeze_growth(&p->module.w2c_memory, &start, &error);
  if (!f) {
    *damaged = error;
    return error ? -1 : 0;
  }
  brig_python_segment* grown =
      realloc(p->backing.segments, (p->backing.segment_count + 1) * sizeof *grown);
  if (!grown) {
    /* The pages stay mapped from the file; without its record they would be taken for the
     * image's. The instance cannot describe itself any more. */
    brig_mem_file_unref(f);
    *damaged = 1;
    return -1;
  }
  p->backing.segments = grown;
  grown[p->backing.segment_count].start = start;
  grown[p->backing.segment_count].end = start + brig_mem_file_bytes(f);
  grown[p->backing.segment_count].file = f;
  grown[p->backing.segment_count].populated = 0;
  p->backing.segment_count++;
  if (populate) populate_segment(p, &grown[p->backing.segment_count - 1]);
  return 0;
}

static brig_python_state* new_state(brig_python_instance* p) {
  brig_python_state* s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->refs = 1;
  s->memory_bytes = p->module.w2c_memory.size;
  s->g0 = p->module.w2c_g0;
  if (backing_copy(&s->backing, &p->backing) != 0) {
    free(s);
    return NULL;
  }
  return s;
}

brig_python_state* brig_python_instance_base_state(brig_python_instance* p) {
  if (!p->backing.image) return NULL;
  return new_state(p);
}

int brig_python_instance_has_image(const brig_python_instance* p) { return p->backing.image != NULL; }

/* ---- recorded differences ("delta"): for each page, in ascending order,
 *   u32 page; u32 word count n; u64 mask[8] (bit w: 8-byte word w differs); u64 xor[n]
 * where xor = the page's word ^ the backing's word. */

typedef struct {
  uint8_t* data;
  size_t size, cap;
  uint32_t pages;
  const brig_python_backing* backing;
  const uint8_t* memory;
  int failed;
} delta_writer;

static int delta_reserve(delta_writer* w, size_t more) {
  if (w->size + more <= w->cap) return 0;
  size_t cap = w->cap ? w->cap * 2 : 16384;
  while (cap < w->size + more) cap *= 2;
  uint8_t* grown = realloc(w->data, cap);
  if (!grown) return -1;
  w->data = grown;
  w->cap = cap;
  return 0;
}

static int encode_run(void* ctx, uint64_t first, uint64_t count) {
  delta_writer* w = ctx;
  static const uint64_t kZero[HOST_PAGE / 8];
  for (uint64_t page = first; page < first + count; page++) {
    const uint64_t* now = (const uint64_t*)(w->memory + page * HOST_PAGE);
    const uint8_t* base_bytes = backing_page(w->backing, page);
    const uint64_t* base = base_bytes ? (const uint64_t*)base_bytes : kZero;
    uint64_t mask[8] = {0};
    uint32_t n = 0;
    for (unsigned i = 0; i < HOST_PAGE / 8; i++) {
      if (now[i] != base[i]) {
        mask[i / 64] |= 1ull << (i % 64);
        n++;
      }
    }
    if (!n) continue; /* the same as below it: nothing to record */
    if (delta_reserve(w, 8 + sizeof mask + (size_t)n * 8) != 0) {
      w->failed = 1;
      return 1;
    }
    uint32_t header[2] = {(uint32_t)page, n};
    memcpy(w->data + w->size, header, sizeof header);
    memcpy(w->data + w->size + 8, mask, sizeof mask);
    uint64_t* out = (uint64_t*)(w->data + w->size + 8 + sizeof mask);
    for (unsigned i = 0; i < HOST_PAGE / 8; i++) {
      if (now[i] != base[i]) *out++ = now[i] ^ base[i];
    }
    w->size += 8 + sizeof mask + (size_t)n * 8;
    w->pages++;
  }
  return 0;
}

/* Applies a delta made by encode_run to memory that holds the backing's bytes. 0, or -1 if
 * it does not fit the memory (never for deltas this file made). */
static int apply_delta(const uint8_t* d, size_t size, uint8_t* memory, uint64_t memory_bytes) {
  size_t at = 0;
  while (at < size) {
    uint32_t header[2];
    uint64_t mask[8];
    if (size - at < 8 + sizeof mask) return -1;
    memcpy(header, d + at, sizeof header);
    memcpy(mask, d + at + 8, sizeof mask);
    at += 8 + sizeof mask;
    uint32_t n = header[1];
    if ((uint64_t)header[0] * HOST_PAGE + HOST_PAGE > memory_bytes || n > HOST_PAGE / 8 ||
        (size - at) / 8 < n) {
      return -1;
    }
    uint64_t* page = (uint64_t*)(memory + (uint64_t)header[0] * HOST_PAGE);
    const uint8_t* x = d + at;
    uint32_t k = 0;
    for (unsigned i = 0; i < HOST_PAGE / 8 && k < n; i++) {
      if (mask[i / 64] >> (i % 64) & 1) {
        uint64_t v;
        memcpy(&v, x + (size_t)k * 8, 8);
        page[i] ^= v;
        k++;
      }
    }
    if (k != n) return -1;
    at += (size_t)n * 8;
  }
  return 0;
}

brig_python_state* brig_python_instance_checkpoint(brig_python_instance* p, int* damaged) {
  *damaged = 0;
  if (!p->backing.image) return NULL;
  if (freeze_growth(p, damaged, 1) != 0) return NULL;
  if (!p->backing.layer) brig_python_instance_populate(p); /* (see populate_segment) */
  brig_python_state* s = new_state(p);
  if (!s) return NULL;
  const wasm_rt_memory_t* mem = &p->module.w2c_memory;
  delta_writer w = {.backing = &s->backing, .memory = mem->data};
  int r = brig_written_pages(mem->data, mem->size / HOST_PAGE, encode_run, &w);
  if (r != 0 || w.failed) {
    free(w.data);
    brig_python_state_release(s);
    return NULL;
  }
  s->delta = w.data;
  s->delta_bytes = w.size;
  s->delta_pages = w.pages;
  return s;
}

/* ---- shared states: the changed pages copied into a layer ---- */

typedef struct {
  uint32_t (*runs)[2];
  uint32_t count, cap;
  int failed;
} run_list;

/* Appends a run without merging (runs may then be unsorted). 0, or 1 (out of memory). */
static int run_push(run_list* l, uint64_t first, uint64_t count) {
  if (l->count == l->cap) {
    uint32_t cap = l->cap ? l->cap * 2 : 64;
    uint32_t (*grown)[2] = realloc(l->runs, cap * sizeof *grown);
    if (!grown) {
      l->failed = 1;
      return 1;
    }
    l->runs = grown;
    l->cap = cap;
  }
  l->runs[l->count][0] = (uint32_t)first;
  l->runs[l->count][1] = (uint32_t)count;
  l->count++;
  return 0;
}

/* Appends a run, merged into the last one where they touch (runs come in ascending order).
 * 0, or 1 (out of memory). */
static int run_add(run_list* l, uint64_t first, uint64_t count) {
  if (l->count && (uint64_t)l->runs[l->count - 1][0] + l->runs[l->count - 1][1] >= first) {
    uint64_t end = first + count, last_end = (uint64_t)l->runs[l->count - 1][0] + l->runs[l->count - 1][1];
    if (end > last_end) l->runs[l->count - 1][1] = (uint32_t)(end - l->runs[l->count - 1][0]);
    return 0;
  }
  return run_push(l, first, count);
}

static int collect_run(void* ctx, uint64_t first, uint64_t count) { return run_add(ctx, first, count); }

static int cmp_u32(const void* a, const void* b) {
  uint32_t x = *(const uint32_t*)a, y = *(const uint32_t*)b;
  return x < y ? -1 : x > y;
}

/* A layer's runs become mappings: merge the runs separated by the smallest gaps until at
 * most `max_runs` remain (the gap pages are then copied too: their bytes are the backing's,
 * unchanged). Fewer mappings make instances cheaper to create; each merge costs the gap's
 * pages once, in the layer. */
static void merge_runs(run_list* l, uint32_t max_runs) {
  if (l->count <= max_runs) return;
  uint32_t gaps_n = l->count - 1;
  uint32_t* gaps = malloc(gaps_n * sizeof *gaps);
  if (!gaps) return; /* more mappings, still correct */
  for (uint32_t i = 0; i < gaps_n; i++) gaps[i] = l->runs[i + 1][0] - (l->runs[i][0] + l->runs[i][1]);
  qsort(gaps, gaps_n, sizeof *gaps, cmp_u32);
  uint32_t merges = l->count - max_runs;
  uint32_t threshold = gaps[merges - 1];
  uint32_t at_threshold = 0; /* how many gaps equal to the threshold may still merge */
  for (uint32_t i = 0; i < merges; i++) at_threshold += gaps[i] == threshold;
  free(gaps);
  uint32_t out = 0;
  for (uint32_t i = 1; i < l->count; i++) {
    uint32_t gap = l->runs[i][0] - (l->runs[out][0] + l->runs[out][1]);
    int merge = gap < threshold || (gap == threshold && at_threshold > 0);
    if (merge) {
      if (gap == threshold) at_threshold--;
      l->runs[out][1] = l->runs[i][0] + l->runs[i][1] - l->runs[out][0];
    } else {
      l->runs[++out][0] = l->runs[i][0];
      l->runs[out][1] = l->runs[i][1];
    }
  }
  l->count = out + 1;
}

enum { kMaxLayerRuns = 6 };

brig_python_state* brig_python_instance_share(brig_python_instance* p, int* damaged) {
  *damaged = 0;
  if (!p->backing.image) return NULL;
  /* Not populated: forks are made often; page snapshots wait for brig_python_instance_populate. */
  if (freeze_growth(p, damaged, 0) != 0) return NULL;
  const wasm_rt_memory_t* mem = &p->module.w2c_memory;
  /* Pages that differ from the image and segments: those `p` wrote, and those of its own
   * layer (a fork of a fork copies them again, so that no instance maps two layers). */
  run_list written = {0};
  if (brig_written_pages(mem->data, mem->size / HOST_PAGE, collect_run, &written) != 0 || written.failed) {
    free(written.runs);
    return NULL;
  }
  run_list all = {0};
  const brig_python_layer* old = p->backing.layer;
  uint32_t i = 0, j = 0;
  while (!all.failed && (i < written.count || (old && j < old->run_count))) {
    int take_written = i < written.count && (!old || j >= old->run_count || written.runs[i][0] <= old->runs[j][0]);
    if (take_written) {
      run_add(&all, written.runs[i][0], written.runs[i][1]);
      i++;
    } else {
      uint64_t end = (uint64_t)old->runs[j][0] + old->runs[j][1];
      if (end * HOST_PAGE > mem->size) end = mem->size / HOST_PAGE;
      if (end > old->runs[j][0]) run_add(&all, old->runs[j][0], end - old->runs[j][0]);
      j++;
    }
  }
  free(written.runs);
  if (all.failed) {
    free(all.runs);
    return NULL;
  }
  merge_runs(&all, kMaxLayerRuns);

  brig_python_layer* layer = calloc(1, sizeof *layer);
  int fd = memfd_create("brig-layer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  int ok = layer && fd >= 0 && ftruncate(fd, mem->size) == 0;
  for (uint32_t k = 0; ok && k < all.count; k++) {
    uint64_t at = (uint64_t)all.runs[k][0] * HOST_PAGE, len = (uint64_t)all.runs[k][1] * HOST_PAGE;
    while (ok && len) {
      ssize_t n = pwrite(fd, mem->data + at, len, (off_t)at);
      if (n <= 0) ok = 0;
      else {
        at += (uint64_t)n;
        len -= (uint64_t)n;
      }
    }
  }
  ok = ok && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == 0;
  if (ok) {
    layer->file = brig_mem_file_adopt(fd, mem->size);
    fd = -1;
    ok = layer->file != NULL;
  }
  if (!ok) {
    if (fd >= 0) close(fd);
    if (layer) brig_mem_file_unref(layer->file);
    free(layer);
    free(all.runs);
    return NULL;
  }
  layer->refs = 1;
  layer->runs = all.runs;
  layer->run_count = all.count;

  brig_python_state* s = calloc(1, sizeof *s);
  if (!s || backing_copy(&s->backing, &p->backing) != 0) {
    free(s);
    layer_unref(layer);
    return NULL;
  }
  layer_unref(s->backing.layer);
  s->backing.layer = layer;
  s->own_layer = 1;
  s->refs = 1;
  s->memory_bytes = mem->size;
  s->g0 = p->module.w2c_g0;
  return s;
}

static int cmp_run(const void* a, const void* b) {
  const uint32_t* x = a;
  const uint32_t* y = b;
  return x[0] < y[0] ? -1 : x[0] > y[0];
}

int brig_python_instance_changed_pages(brig_python_instance* p, brig_page_run_visitor visit, void* ctx) {
  const wasm_rt_memory_t* mem = &p->module.w2c_memory;
  uint64_t pages = mem->size / HOST_PAGE;
  run_list l = {0};
  if (brig_written_pages(mem->data, pages, collect_run, &l) != 0) l.failed = 1;
  const brig_python_layer* layer = p->backing.layer;
  for (uint32_t i = 0; layer && i < layer->run_count && !l.failed; i++) {
    run_push(&l, layer->runs[i][0], layer->runs[i][1]);
  }
  for (uint32_t i = 0; i < p->backing.segment_count && !l.failed; i++) {
    const brig_python_segment* g = &p->backing.segments[i];
    for (uint32_t e = 0; e < brig_mem_file_extent_count(g->file) && !l.failed; e++) {
      uint64_t first, end;
      brig_mem_file_extent(g->file, e, &first, &end);
      run_push(&l, g->start / HOST_PAGE + first, end - first);
    }
  }
  int result = l.failed ? -1 : 0;
  if (!result) {
    qsort(l.runs, l.count, sizeof *l.runs, cmp_run);
    uint64_t at = 0; /* pages before `at` were visited */
    for (uint32_t i = 0; i < l.count && !result; i++) {
      uint64_t first = l.runs[i][0], end = first + l.runs[i][1];
      if (end > pages) end = pages;
      if (first < at) first = at;
      if (first >= end) continue;
      /* extend over overlapping runs that follow */
      while (i + 1 < l.count && l.runs[i + 1][0] <= end) {
        uint64_t e = (uint64_t)l.runs[i + 1][0] + l.runs[i + 1][1];
        if (e > end) end = e > pages ? pages : e;
        i++;
      }
      result = visit(ctx, first, end - first);
      at = end;
    }
  }
  free(l.runs);
  return result;
}

brig_python_instance* brig_python_instance_from_state(const brig_python_state* s, void* wasi_context,
                                                      uint32_t memory_limit_pages) {
  const brig_python_image* img = s->backing.image;
  pthread_once(&g_module_once, init_module);
  uint32_t count = 1 + s->backing.segment_count + (s->backing.layer ? s->backing.layer->run_count : 0);
  brig_rt_mapping* maps = calloc(count, sizeof *maps);
  brig_python_instance* p = calloc(1, sizeof *p);
  if (!maps || !p) goto fail_early;
  uint32_t n = 0;
  maps[n++] = (brig_rt_mapping){0, img->memory_bytes, img->memfd, 0};
  for (uint32_t i = 0; i < s->backing.segment_count; i++) {
    const brig_python_segment* g = &s->backing.segments[i];
    maps[n++] = (brig_rt_mapping){g->start, g->end - g->start, brig_mem_file_fd(g->file), 0};
  }
  const brig_python_layer* l = s->backing.layer;
  for (uint32_t i = 0; l && i < l->run_count; i++) {
    uint64_t at = (uint64_t)l->runs[i][0] * HOST_PAGE;
    maps[n++] = (brig_rt_mapping){at, (uint64_t)l->runs[i][1] * HOST_PAGE, brig_mem_file_fd(l->file), at};
  }
  p->module = img->module;
  p->module.w2c_g0 = s->g0;
  p->id = next_instance_id();
  p->wasi.context = wasi_context;
  p->module.Z_wasi_snapshot_preview1_instance = &p->wasi;
  wasm_rt_memory_t* mem = &p->module.w2c_memory;
  uint32_t max = img->module.w2c_memory.max_pages;
  if (memory_limit_pages && memory_limit_pages < max) max = memory_limit_pages;
  if (brig_rt_map_memory_layers(mem, maps, n, s->memory_bytes, max) != 0) goto fail_early;
  free(maps);
  maps = NULL;
  p->wasi.memory = mem;
  share_table(p, img);
  if (brig_rt_memory_use_growth_file(mem) != 0 ||
      backing_copy(&p->backing, &s->backing) != 0 ||
      apply_delta(s->delta, s->delta_bytes, mem->data, mem->size) != 0) {
    brig_python_instance_destroy(p);
    return NULL;
  }
  /* A fork (a state with a layer) is never page-snapshotted against the image: it maps its
   * segments lazily, which keeps making forks cheap. */
  for (uint32_t i = 0; i < p->backing.segment_count; i++) p->backing.segments[i].populated = 0;
  if (!s->backing.layer) brig_python_instance_populate(p);
  return p;
fail_early:
  free(maps);
  free(p);
  return NULL;
}

brig_python_state* brig_python_state_ref(brig_python_state* s) {
  if (s) __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
  return s;
}

void brig_python_state_release(brig_python_state* s) {
  if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  backing_release(&s->backing);
  free(s->delta);
  free(s);
}

uint64_t brig_python_state_memory_bytes(const brig_python_state* s) { return s->memory_bytes; }

uint32_t brig_python_state_delta_pages(const brig_python_state* s) { return s->delta_pages; }

uint64_t brig_python_state_private_bytes(const brig_python_state* s) {
  uint64_t n = s->delta_bytes;
  if (s->own_layer) n += brig_mem_file_data_bytes(s->backing.layer->file);
  return n;
}

uint32_t brig_python_state_mapping_count(const brig_python_state* s) {
  return 1 + s->backing.segment_count + (s->backing.layer ? s->backing.layer->run_count : 0);
}

/* Trampolines: brig_guest_call runs a void(void*) function; each packs its arguments and
 * results in a struct on the caller's stack. */
typedef struct {
  brig_python_instance* p;
  uint32_t a, b, c, d;
  uint32_t ret;
} call_args;

static void do_initialize(void* v) {
  call_args* c = v;
  Z_pythonZ__initialize(&c->p->module);
  c->ret = Z_pythonZ_brig_init(&c->p->module);
}
static void do_alloc(void* v) {
  call_args* c = v;
  c->ret = Z_pythonZ_brig_alloc(&c->p->module, c->a);
}
static void do_free(void* v) {
  call_args* c = v;
  Z_pythonZ_brig_free(&c->p->module, c->a);
}
static void do_execute(void* v) {
  call_args* c = v;
  c->ret = Z_pythonZ_brig_execute(&c->p->module, c->a, c->b, c->c, c->d);
}
static void do_result(void* v) {
  call_args* c = v;
  c->ret = Z_pythonZ_brig_result(&c->p->module);
}

static brig_call_outcome run(brig_python_instance* p, void (*fn)(void*), call_args* args) {
  return brig_guest_call_controlled(p->wasi.memory, fn, args, p->control);
}

brig_call_outcome brig_python_initialize(brig_python_instance* p, int32_t* status_out) {
  call_args c = {p, 0, 0, 0, 0, 0};
  brig_call_outcome o = run(p, do_initialize, &c);
  if (o.status == BRIG_CALL_RETURNED) *status_out = (int32_t)c.ret;
  return o;
}

brig_call_outcome brig_python_alloc(brig_python_instance* p, uint32_t size, uint32_t* ptr_out) {
  call_args c = {p, size, 0, 0, 0, 0};
  brig_call_outcome o = run(p, do_alloc, &c);
  if (o.status == BRIG_CALL_RETURNED) *ptr_out = c.ret;
  return o;
}

brig_call_outcome brig_python_free(brig_python_instance* p, uint32_t ptr) {
  call_args c = {p, ptr, 0, 0, 0, 0};
  return run(p, do_free, &c);
}

brig_call_outcome brig_python_execute(brig_python_instance* p, uint32_t code, uint32_t code_len,
                                      uint32_t filename, uint32_t filename_len, int32_t* len_out) {
  call_args c = {p, code, code_len, filename, filename_len, 0};
  brig_call_outcome o = run(p, do_execute, &c);
  if (o.status == BRIG_CALL_RETURNED) *len_out = (int32_t)c.ret;
  return o;
}

brig_call_outcome brig_python_result(brig_python_instance* p, uint32_t* ptr_out) {
  call_args c = {p, 0, 0, 0, 0, 0};
  brig_call_outcome o = run(p, do_result, &c);
  if (o.status == BRIG_CALL_RETURNED) *ptr_out = c.ret;
  return o;
}
