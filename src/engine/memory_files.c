#define _GNU_SOURCE
#include "engine/memory_files.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Debian 12's kernel headers predate PAGEMAP_SCAN (Linux 6.7): its ABI, from linux/fs.h. */
#ifndef PAGEMAP_SCAN
struct page_region {
  uint64_t start, end, categories;
};
struct pm_scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted, category_mask,
      category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_PFNZERO (1 << 5)
#endif
#ifndef PAGE_IS_SWAPPED
#define PAGE_IS_SWAPPED (1 << 4)
#endif

struct brig_mem_file {
  int refs; /* atomic */
  int fd;
  uint64_t bytes;
  const uint8_t* view; /* PROT_READ, MAP_SHARED; read only at data pages (holes would allocate) */
  uint64_t (*extents)[2]; /* [first page, end page) of the data, ascending */
  uint32_t extent_count;
  uint64_t data_pages;
};

brig_mem_file* brig_mem_file_adopt(int fd, uint64_t bytes) {
  brig_mem_file* f = calloc(1, sizeof *f);
  if (!f) {
    close(fd);
    return NULL;
  }
  f->refs = 1;
  f->fd = fd;
  f->bytes = bytes;
  if (bytes) {
    void* v = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (v == MAP_FAILED) goto fail;
    f->view = v;
  }
  off_t at = 0;
  while (at < (off_t)bytes) {
    off_t data = lseek(fd, at, SEEK_DATA);
    if (data < 0) break; /* ENXIO: no data past `at` */
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0 || hole > (off_t)bytes) hole = (off_t)bytes;
    uint64_t (*grown)[2] = realloc(f->extents, (f->extent_count + 1) * sizeof *f->extents);
    if (!grown) goto fail;
    f->extents = grown;
    f->extents[f->extent_count][0] = (uint64_t)data / BRIG_PAGE;
    f->extents[f->extent_count][1] = ((uint64_t)hole + BRIG_PAGE - 1) / BRIG_PAGE;
    f->data_pages += f->extents[f->extent_count][1] - f->extents[f->extent_count][0];
    f->extent_count++;
    at = hole;
  }
  return f;
fail:
  brig_mem_file_unref(f);
  return NULL;
}

brig_mem_file* brig_mem_file_ref(brig_mem_file* f) {
  if (f) __atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
  return f;
}

void brig_mem_file_unref(brig_mem_file* f) {
  if (!f || __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  if (f->view) munmap((void*)f->view, f->bytes);
  if (f->fd >= 0) close(f->fd);
  free(f->extents);
  free(f);
}

int brig_mem_file_fd(const brig_mem_file* f) { return f->fd; }
uint64_t brig_mem_file_bytes(const brig_mem_file* f) { return f->bytes; }
uint64_t brig_mem_file_data_bytes(const brig_mem_file* f) { return f->data_pages * BRIG_PAGE; }

uint32_t brig_mem_file_extent_count(const brig_mem_file* f) { return f->extent_count; }

void brig_mem_file_extent(const brig_mem_file* f, uint32_t i, uint64_t* first, uint64_t* end) {
  *first = f->extents[i][0];
  *end = f->extents[i][1];
}

const uint8_t* brig_mem_file_page(const brig_mem_file* f, uint64_t page) {
  uint32_t lo = 0, hi = f->extent_count;
  while (lo < hi) { /* first extent ending after `page` */
    uint32_t mid = lo + (hi - lo) / 2;
    if (f->extents[mid][1] <= page) lo = mid + 1;
    else hi = mid;
  }
  if (lo == f->extent_count || f->extents[lo][0] > page) return NULL;
  if ((page + 1) * BRIG_PAGE > f->bytes) return NULL; /* a partial last page: never the case here */
  return f->view + page * BRIG_PAGE;
}

/* ---- written pages ---- */

static pthread_once_t g_pagemap_once = PTHREAD_ONCE_INIT;
static int g_pagemap_fd = -1;
static int g_have_scan = 0;

static void open_pagemap(void) {
  g_pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (g_pagemap_fd < 0) return;
  struct pm_scan_arg probe = {.size = sizeof probe};
  /* An empty range: succeeds (0 regions) where the ioctl exists, ENOTTY/EINVAL where not. */
  g_have_scan = ioctl(g_pagemap_fd, PAGEMAP_SCAN, &probe) >= 0;
}

/* Visits the runs of pages that have any of the categories `anyof` and none of `none`. */
static int scan_with_ioctl(const uint8_t* addr, uint64_t pages, uint64_t anyof, uint64_t none,
                           brig_page_run_visitor visit, void* ctx) {
  enum { kRegions = 512 };
  struct page_region regions[kRegions];
  uint64_t start = (uintptr_t)addr, end = start + pages * BRIG_PAGE;
  while (start < end) {
    struct pm_scan_arg arg = {
        .size = sizeof arg,
        .start = start,
        .end = end,
        .vec = (uintptr_t)regions,
        .vec_len = kRegions,
        .category_mask = none,
        .category_inverted = none,
        .category_anyof_mask = anyof,
        .return_mask = anyof,
    };
    long n = ioctl(g_pagemap_fd, PAGEMAP_SCAN, &arg);
    if (n < 0) return -1;
    for (long i = 0; i < n; i++) {
      int stop = visit(ctx, (regions[i].start - (uintptr_t)addr) / BRIG_PAGE,
                       (regions[i].end - regions[i].start) / BRIG_PAGE);
      if (stop) return stop;
    }
    if (arg.walk_end <= start) return -1;
    start = arg.walk_end;
  }
  return 0;
}

static int scan_with_read(const uint8_t* addr, uint64_t pages, brig_page_run_visitor visit, void* ctx) {
  enum { kBatch = 4096 };
  uint64_t* entries = malloc(kBatch * sizeof *entries);
  if (!entries) return -1;
  uint64_t run_first = 0, run_count = 0;
  int result = 0;
  for (uint64_t first = 0; first < pages && !result; first += kBatch) {
    uint64_t n = pages - first < kBatch ? pages - first : kBatch;
    off_t at = (off_t)(((uintptr_t)addr / BRIG_PAGE + first) * sizeof(uint64_t));
    if (pread(g_pagemap_fd, entries, n * sizeof *entries, at) != (ssize_t)(n * sizeof *entries)) {
      result = -1;
      break;
    }
    for (uint64_t i = 0; i < n && !result; i++) {
      /* bit 63 present, bit 61 file page or shared anonymous (the zero page reads as anon) */
      int written = (entries[i] >> 63 & 1) && !(entries[i] >> 61 & 1);
      if (written && run_count && run_first + run_count == first + i) {
        run_count++;
      } else if (written) {
        if (run_count) result = visit(ctx, run_first, run_count);
        run_first = first + i;
        run_count = 1;
      }
    }
  }
  if (!result && run_count) result = visit(ctx, run_first, run_count);
  free(entries);
  return result;
}

int brig_written_pages(const uint8_t* addr, uint64_t pages, brig_page_run_visitor visit, void* ctx) {
  pthread_once(&g_pagemap_once, open_pagemap);
  if (g_pagemap_fd < 0) return -1;
  /* present, and neither the file's page nor the shared zero page */
  if (g_have_scan) return scan_with_ioctl(addr, pages, PAGE_IS_PRESENT, PAGE_IS_FILE | PAGE_IS_PFNZERO, visit, ctx);
  return scan_with_read(addr, pages, visit, ctx);
}

int brig_private_pages(const uint8_t* addr, uint64_t pages, brig_page_run_visitor visit, void* ctx) {
  pthread_once(&g_pagemap_once, open_pagemap);
  if (g_pagemap_fd < 0 || !g_have_scan) return -1;
  /* swapped-out private pages too (a file page is never swapped in a process's page table) */
  return scan_with_ioctl(addr, pages, PAGE_IS_PRESENT | PAGE_IS_SWAPPED, PAGE_IS_FILE | PAGE_IS_PFNZERO, visit, ctx);
}
