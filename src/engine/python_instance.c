#define _GNU_SOURCE
#include "engine/python_instance.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/python_instance_internal.h"

extern const char brig_guest_build_id[];

static pthread_once_t g_module_once = PTHREAD_ONCE_INIT;
static void init_module(void) {
  wasm_rt_init();
  Z_python_init_module(); /* registers function types: process-wide, once */
}

brig_python_instance* brig_python_instance_create(void* wasi_context, uint32_t memory_limit_pages) {
  pthread_once(&g_module_once, init_module);
  brig_python_instance* p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->wasi.context = wasi_context;
  brig_rt_set_memory_limit_pages(memory_limit_pages);
  Z_python_instantiate(&p->module, &p->wasi);
  brig_rt_set_memory_limit_pages(0);
  p->wasi.memory = Z_pythonZ_memory(&p->module);
  return p;
}

void brig_python_instance_destroy(brig_python_instance* p) {
  if (!p) return;
  Z_python_free(&p->module);
  free(p);
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

brig_python_image* brig_python_image_capture(brig_python_instance* p) {
  brig_python_image* img = calloc(1, sizeof *img);
  if (!img) return NULL;
  img->memfd = -1;
  img->module = p->module;
  img->memory_bytes = p->module.w2c_memory.size;
  img->table_size = p->module.w2c_T0.size;
  img->table = malloc((img->table_size ? img->table_size : 1) * sizeof *img->table);
  img->memfd = memfd_create("brig-image", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (!img->table || img->memfd < 0 || ftruncate(img->memfd, img->memory_bytes) != 0) goto fail;
  memcpy(img->table, p->module.w2c_T0.data, img->table_size * sizeof *img->table);
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
  return img;
fail:
  brig_python_image_destroy(img);
  return NULL;
}

uint64_t brig_python_image_memory_bytes(const brig_python_image* img) { return img->memory_bytes; }

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
  return count;
}

void brig_python_image_destroy(brig_python_image* img) {
  if (!img) return;
  free(img->warm);
  if (img->memfd >= 0) close(img->memfd);
  free(img->table);
  free(img);
}

brig_python_instance* brig_python_instance_clone(const brig_python_image* img, void* wasi_context,
                                                 uint32_t memory_limit_pages) {
  pthread_once(&g_module_once, init_module); /* an image loaded from disk made no instance */
  brig_python_instance* p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->module = img->module;
  p->wasi.context = wasi_context;
  p->module.Z_wasi_snapshot_preview1_instance = &p->wasi;
  wasm_rt_memory_t* mem = &p->module.w2c_memory;
  uint32_t max = img->module.w2c_memory.max_pages;
  if (memory_limit_pages && memory_limit_pages < max) max = memory_limit_pages;
  if (max < mem->pages) max = mem->pages;
  if (brig_rt_map_memory_image(mem, img->memfd, img->memory_bytes, max) != 0) {
    free(p);
    return NULL;
  }
  wasm_rt_funcref_table_t* table = &p->module.w2c_T0;
  table->data = malloc((img->table_size ? img->table_size : 1) * sizeof *table->data);
  if (!table->data) {
    wasm_rt_free_memory(mem);
    free(p);
    return NULL;
  }
  /* wasm2c 1.0.32 runs an indirect callee with the instance stored in the table entry: each
   * clone's entries must name the clone, or calls would run on the template's memory. */
  for (uint32_t i = 0; i < img->table_size; i++) {
    table->data[i] = img->table[i];
    if (table->data[i].module_instance) table->data[i].module_instance = &p->module;
  }
  p->wasi.memory = mem;
  /* Best effort: a kernel without MADV_POPULATE_WRITE just takes the faults later. */
  for (uint32_t i = 0; i < img->warm_count; i++) {
    madvise(mem->data + (size_t)img->warm[i][0] * HOST_PAGE, (size_t)img->warm[i][1] * HOST_PAGE,
            MADV_POPULATE_WRITE);
  }
  return p;
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
