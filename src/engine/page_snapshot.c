#define _GNU_SOURCE
#include "engine/page_snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/memory_files.h"
#include "engine/python_instance_internal.h"

/* What diffs need of an image, made once per image: a read-only view of its memory, which
 * of its pages hold data (the rest are holes: zeros), and its digest. Images live as long
 * as the process in practice, so these are never freed. */
typedef struct image_view {
  const brig_python_image* image;
  const uint8_t* bytes;  /* MAP_SHARED, PROT_READ of the image's memfd; read only at data pages */
  uint8_t* has_data;     /* one byte per page: 1 = data, 0 = hole */
  uint32_t pages;
  uint64_t digest;
  struct image_view* next;
} image_view;

static pthread_mutex_t g_views_mu = PTHREAD_MUTEX_INITIALIZER;
static image_view* g_views;

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

/* Four independent lanes so the multiply chains overlap. */
static uint64_t hash_page(uint64_t seed, const uint8_t* page) {
  uint64_t a = seed, b = ~seed, c = seed * 3, d = seed ^ 0x5bd1e995u;
  const uint64_t* w = (const uint64_t*)page;
  for (unsigned i = 0; i < BRIG_HOST_PAGE / 8; i += 4) {
    a = (a ^ w[i]) * 0x9e3779b97f4a7c15ull;
    b = (b ^ w[i + 1]) * 0xc2b2ae3d27d4eb4full;
    c = (c ^ w[i + 2]) * 0x165667b19e3779f9ull;
    d = (d ^ w[i + 3]) * 0x27d4eb2f165667c5ull;
  }
  return mix(mix(mix(mix(seed, a), b), c), d);
}

/* `digest`: the known digest, or NULL to compute it. */
static image_view* make_view(const brig_python_image* img, const uint64_t* digest) {
  image_view* v = calloc(1, sizeof *v);
  if (!v) return NULL;
  v->image = img;
  v->pages = img->memory_bytes / BRIG_HOST_PAGE;
  v->has_data = calloc(v->pages ? v->pages : 1, 1);
  if (!v->has_data) goto fail;
  if (img->memory_bytes) {
    void* m = mmap(NULL, img->memory_bytes, PROT_READ, MAP_SHARED, img->memfd, 0);
    if (m == MAP_FAILED) goto fail;
    v->bytes = m;
  }
  /* Data extents of the memfd; holes read as zeros without costing a page each. */
  off_t at = 0;
  while (at < (off_t)img->memory_bytes) {
    off_t data = lseek(img->memfd, at, SEEK_DATA);
    if (data < 0) break; /* ENXIO: no data past `at` */
    off_t hole = lseek(img->memfd, data, SEEK_HOLE);
    if (hole < 0 || hole > (off_t)img->memory_bytes) hole = (off_t)img->memory_bytes;
    for (off_t p = data / BRIG_HOST_PAGE; p < (hole + BRIG_HOST_PAGE - 1) / BRIG_HOST_PAGE; p++) v->has_data[p] = 1;
#ifdef MADV_POPULATE_READ
    /* About to hash every data page: map them in one call rather than a fault each (the
     * holes stay unmapped). Best effort: an older kernel faults them in as they are read. */
    if (!digest && v->bytes) (void)madvise((void*)(v->bytes + data), (size_t)(hole - data), MADV_POPULATE_READ);
#endif
    at = hole;
  }
  if (digest) {
    v->digest = *digest; /* data pages of zeros stay marked: they compare equal all the same */
    return v;
  }
  uint64_t h = mix(0x62726967ull /* "brig" */, img->memory_bytes);
  for (uint32_t p = 0; p < v->pages; p++) {
    if (!v->has_data[p]) continue;
    const uint8_t* page = v->bytes + (size_t)p * BRIG_HOST_PAGE;
    const uint64_t* w = (const uint64_t*)page;
    int zero = 1;
    for (unsigned i = 0; i < BRIG_HOST_PAGE / 8 && zero; i++) zero = w[i] == 0;
    if (zero) {
      v->has_data[p] = 0; /* an allocated page of zeros is a hole to everyone else */
      continue;
    }
    h = hash_page(mix(h, p), page);
  }
  v->digest = h;
  return v;
fail:
  free(v->has_data);
  free(v);
  return NULL;
}

static image_view* view_of(const brig_python_image* img, const uint64_t* digest) {
  pthread_mutex_lock(&g_views_mu);
  image_view* v = g_views;
  while (v && v->image != img) v = v->next;
  if (!v && (v = make_view(img, digest)) != NULL) {
    v->next = g_views;
    g_views = v;
  }
  pthread_mutex_unlock(&g_views_mu);
  return v;
}

uint64_t brig_python_image_digest(const brig_python_image* img) {
  image_view* v = view_of(img, NULL);
  return v ? v->digest : 0;
}

int brig_python_image_set_digest(const brig_python_image* img, uint64_t digest) {
  return view_of(img, &digest) ? 0 : -1;
}

int brig_python_image_verify_digest(const brig_python_image* img, uint64_t expected) {
  image_view* v = make_view(img, NULL);
  if (!v) return -1;
  if (v->digest != expected) {
    /* Never registered: a refused image leaves nothing behind that a later image at the
     * same address could be mistaken for. */
    if (v->bytes) munmap((void*)v->bytes, img->memory_bytes);
    free(v->has_data);
    free(v);
    return 0;
  }
  pthread_mutex_lock(&g_views_mu);
  v->next = g_views;
  g_views = v;
  pthread_mutex_unlock(&g_views_mu);
  return 1;
}

static int is_zero_page(const uint8_t* page) {
  const uint64_t* w = (const uint64_t*)page;
  for (unsigned i = 0; i < BRIG_HOST_PAGE / 8; i++) {
    if (w[i]) return 0;
  }
  return 1;
}

/* Marks the pages of a run in a bitmap (brig_python_instance_changed_pages' visitor). */
typedef struct {
  uint64_t* bits;
  uint64_t pages;
} page_bitmap;

static int mark_run(void* ctx, uint64_t first, uint64_t count) {
  page_bitmap* b = ctx;
  for (uint64_t i = first; i < first + count && i < b->pages; i++) b->bits[i / 64] |= 1ull << (i % 64);
  return 0;
}

/* Marks the present pages of [first, first + n) read from /proc/self/pagemap (any kind:
 * memory past the image may be a shared mapping of the session's own growth file). */
static int mark_present(const uint8_t* data, uint64_t first, uint64_t n, page_bitmap* b) {
  if (n == 0) return 0;
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  enum { kBatch = 4096 };
  uint64_t* entries = malloc(kBatch * sizeof *entries);
  int result = entries ? 0 : -1;
  for (uint64_t at = first; at < first + n && result == 0; at += kBatch) {
    uint64_t k = first + n - at < kBatch ? first + n - at : kBatch;
    off_t off = (off_t)(((uintptr_t)data / BRIG_HOST_PAGE + at) * sizeof(uint64_t));
    if (pread(fd, entries, k * sizeof *entries, off) != (ssize_t)(k * sizeof *entries)) {
      result = -1;
      break;
    }
    for (uint64_t i = 0; i < k; i++) {
      if (entries[i] >> 63 & 1) mark_run(b, at + i, 1);
    }
  }
  free(entries);
  close(fd);
  return result;
}

/* The candidates of `p` in a bitmap of `pages` bits: p->cand_bits when p is plain (kept for
 * the next walk's `unfaulted` reuse), else one of its own (*owned, for the caller to free).
 * NULL if memory is short or the page map cannot be read. */
static uint64_t* find_candidates(brig_python_instance* p, const uint8_t* data, uint64_t pages, uint64_t in_image,
                                 int unfaulted, uint64_t** owned, int* reused) {
  const int layered = brig_python_instance_layered(p);
  *owned = NULL;
  *reused = 0;
  /* Kept from the last walk: a page becomes one this process wrote (or present past the
   * image) only through a page fault, and the caller vouches there was none since. */
  if (unfaulted && !layered && p->cand_bits && p->cand_id == p->id && p->cand_pages == pages &&
      p->cand_in_image == in_image) {
    *reused = 1;
    return p->cand_bits;
  }
  const size_t words = (size_t)(pages / 64 + 1);
  uint64_t* bits;
  if (layered) {
    p->cand_id = 0; /* what this walk finds is not kept: neither is an older walk's */
    bits = *owned = calloc(words, sizeof(uint64_t));
  } else {
    if (p->cand_bits && p->cand_pages / 64 + 1 == words) {
      memset(p->cand_bits, 0, words * sizeof(uint64_t));
    } else {
      free(p->cand_bits);
      p->cand_bits = calloc(words, sizeof(uint64_t));
    }
    p->cand_id = 0; /* valid only once the walk succeeds */
    p->cand_pages = pages;
    p->cand_in_image = in_image;
    bits = p->cand_bits;
  }
  if (!bits) return NULL;
  page_bitmap cand = {bits, pages};
  if ((layered && brig_python_instance_changed_pages(p, mark_run, &cand) != 0) ||
      brig_written_pages(data, in_image, mark_run, &cand) != 0 ||
      mark_present(data, in_image, pages - in_image, &cand) != 0) {
    free(*owned);
    *owned = NULL;
    return NULL;
  }
  if (!layered) p->cand_id = p->id;
  return bits;
}

/* Walks a candidate bitmap in ascending page order. */
typedef struct candidate_cursor {
  const uint64_t* bits;
  uint64_t pages;
  uint64_t word;
  uint64_t left; /* bits of `word` not yet returned */
} candidate_cursor;

/* The next candidate page, or UINT64_MAX after the last. */
static uint64_t next_candidate(candidate_cursor* c) {
  for (;;) {
    if (c->left) {
      const uint64_t page = c->word * 64 + (uint64_t)__builtin_ctzll(c->left);
      c->left &= c->left - 1;
      return page < c->pages ? page : UINT64_MAX;
    }
    if (++c->word > c->pages / 64) return UINT64_MAX;
    c->left = c->bits[c->word];
  }
}

static void prefetch_page(const uint8_t* page) {
  for (unsigned line = 0; line < BRIG_HOST_PAGE; line += 64) __builtin_prefetch(page + line, 0, 3);
}

/* The walk behind brig_python_instance_diff (compare != 0) and _candidates (compare == 0). */
static int64_t walk_pages(const brig_python_image* img, brig_python_instance* p, brig_page_visitor visit, void* ctx,
                          int compare, int unfaulted, int* reused) {
  image_view* v = view_of(img, NULL);
  if (!v) return -1;
  const wasm_rt_memory_t* mem = &p->module.w2c_memory;
  uint64_t pages = mem->size / BRIG_HOST_PAGE;
  uint64_t in_image = pages < v->pages ? pages : v->pages;
  /* The candidates, in a bitmap:
   * - inside the image, the pages this process wrote (a page still mapped from the memfd is
   *   the image's page; not present = never touched = unchanged): PAGEMAP_SCAN where the
   *   kernel has it, which walks only what is mapped (reading /proc/self/pagemap for every
   *   page was a tenth of a save);
   * - past it, every present page;
   * - a layered instance (a fork, a sandbox rolled back or woken from compaction) maps pages
   *   that differ from the image from files of its own: in the image range they look like
   *   file pages, and frozen growth may not be in the page tables at all: those it lists.
   * Each candidate is then compared with the image. */
  uint64_t* owned;
  int kept_used;
  const uint64_t* cand = find_candidates(p, mem->data, pages, in_image, unfaulted, &owned, &kept_used);
  if (reused) *reused = kept_used;
  if (!cand) return -1;
  int64_t count = 0;
  /* The candidates are read two pages ahead of the one compared: a session's
   * pages are rarely in the cache when it is saved (64 sessions of ~1 MiB each), and the
   * CPU's own prefetcher stops at each page's end. A save of one of 64 sandboxes in turn
   * (sandbox_bench BM_LiveSessionsRotatingSave/64): 85-119 µs before, 76-103 µs with this
   * (bench/RESULTS.md, stop 25). */
  candidate_cursor cursor = {cand, pages, 0, cand[0]};
  uint64_t page = next_candidate(&cursor), next = next_candidate(&cursor);
  if (page != UINT64_MAX) prefetch_page(mem->data + page * BRIG_HOST_PAGE);
  if (next != UINT64_MAX) prefetch_page(mem->data + next * BRIG_HOST_PAGE);
  while (page != UINT64_MAX) {
    const uint64_t after = next_candidate(&cursor);
    if (after != UINT64_MAX) prefetch_page(mem->data + after * BRIG_HOST_PAGE);
    const uint8_t* data = mem->data + page * BRIG_HOST_PAGE;
    const uint8_t* image_page = page < v->pages && v->has_data[page] ? v->bytes + page * BRIG_HOST_PAGE : NULL;
    if (!(compare && (image_page ? memcmp(data, image_page, BRIG_HOST_PAGE) == 0 : is_zero_page(data)))) {
      if (visit(ctx, (uint32_t)page, data, image_page) != 0) {
        count = -2;
        break;
      }
      count++;
    }
    page = next;
    next = after;
  }
  free(owned);
  return count;
}

int64_t brig_python_instance_diff(const brig_python_image* img, brig_python_instance* p,
                                  brig_page_visitor visit, void* ctx) {
  return walk_pages(img, p, visit, ctx, 1, 0, NULL);
}

int64_t brig_python_instance_candidates(const brig_python_image* img, brig_python_instance* p,
                                        brig_page_visitor visit, void* ctx, int unfaulted, int* reused) {
  return walk_pages(img, p, visit, ctx, 0, unfaulted, reused);
}

int brig_python_instance_table_matches(const brig_python_image* img, brig_python_instance* p) {
  const wasm_rt_funcref_table_t* t = &p->module.w2c_T0;
  if (t->size != img->table_size) return 0;
  /* A shared table is the image's own entries (python_instance_internal.h), which no
   * instruction of the guest can change (guest/wasm2c_post.py refuses a guest that could):
   * nothing to compare. Comparing them was ~8 µs of every durable save (bench/RESULTS.md,
   * 2026-12-05). */
  if (t->data == img->table) return 1;
  for (uint32_t i = 0; i < t->size; i++) {
    if (t->data[i].func != img->table[i].func || t->data[i].func_type != img->table[i].func_type) return 0;
  }
  return 1;
}

uint32_t brig_python_instance_get_globals(brig_python_instance* p, uint64_t* out, uint32_t max) {
  if (max >= 1) out[0] = p->module.w2c_g0;
  return 1;
}

int brig_python_instance_set_globals(brig_python_instance* p, const uint64_t* values, uint32_t count) {
  if (count != 1 || values[0] > UINT32_MAX) return -1;
  p->module.w2c_g0 = (uint32_t)values[0];
  return 0;
}

int brig_python_instance_grow_to(brig_python_instance* p, uint32_t pages) {
  wasm_rt_memory_t* mem = &p->module.w2c_memory;
  if (pages <= mem->pages) return 0;
  return wasm_rt_grow_memory(mem, pages - mem->pages) == UINT32_MAX ? -1 : 0;
}
