#define _GNU_SOURCE
#include "engine/image_file.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/page_snapshot.h"
#include "engine/python_instance_internal.h"
#include "util/little_endian.h"

extern const char brig_guest_build_id[];

#define TRAILER_MAGIC 0x32474d4947495242ull /* "BRIGIMG2" little-endian */
#define NULL_FUNC INT64_MIN
/* Bounds that no real image comes near; a trailer past them is damaged. */
#define MAX_TABLE (1u << 24)
#define MAX_WARM (1u << 24)

/* ---- this executable: its ELF build id and the extent of its code ---- */

static char g_key[256];
static uintptr_t g_text_lo = UINTPTR_MAX, g_text_hi = 0;
static pthread_once_t g_exe_once = PTHREAD_ONCE_INIT;

static int find_exe(struct dl_phdr_info* info, size_t size, void* data) {
  (void)size;
  (void)data;
  /* The first object reported is the executable itself. */
  char id_hex[2 * 64 + 1] = "";
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)* ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
      uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
      if (lo < g_text_lo) g_text_lo = lo;
      if (lo + ph->p_memsz > g_text_hi) g_text_hi = lo + ph->p_memsz;
    }
    if (ph->p_type != PT_NOTE) continue;
    const uint8_t* p = (const uint8_t*)(info->dlpi_addr + ph->p_vaddr);
    const uint8_t* end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const ElfW(Nhdr)* n = (const ElfW(Nhdr)*)p;
      const uint8_t* name = p + sizeof *n;
      const uint8_t* desc = name + ((n->n_namesz + 3) & ~3u);
      if (desc + n->n_descsz > end) break;
      if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && memcmp(name, "GNU", 4) == 0 && n->n_descsz <= 64) {
        for (uint32_t k = 0; k < n->n_descsz; k++) snprintf(id_hex + 2 * k, 3, "%02x", desc[k]);
      }
      p = desc + ((n->n_descsz + 3) & ~3u);
    }
  }
  if (id_hex[0]) snprintf(g_key, sizeof g_key, "%s-%s", brig_guest_build_id, id_hex);
  return 1; /* stop after the executable */
}

static void init_exe(void) { dl_iterate_phdr(find_exe, NULL); }

const char* brig_python_image_file_key(void) {
  pthread_once(&g_exe_once, init_exe);
  return g_key;
}

/* Table entries are stored relative to this function of the same binary. */
static uintptr_t anchor(void) { return (uintptr_t)&brig_python_image_load; }

/* ---- the trailer ---- */

typedef struct {
  char* data;
  size_t size, cap;
} buffer;

static int put(buffer* b, const void* p, size_t n) {
  if (b->size + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->size + n) cap *= 2;
    char* grown = realloc(b->data, cap);
    if (!grown) return -1;
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->size, p, n);
  b->size += n;
  return 0;
}

/* An integer, little-endian. */
static int put_int(buffer* b, const void* v, size_t n) {
  char le[8];
  return brig_le_store_int(le, v, n) != 0 ? -1 : put(b, le, n);
}

#define PUT(b, v) put_int((b), &(v), sizeof(v))

typedef brig_le_reader reader;
#define TAKE(r, v) BRIG_LE_READ((r), (v))

static int copy_memory(int from, int to, uint32_t bytes) {
  off_t at = 0;
  char* page = malloc(HOST_PAGE);
  if (!page) return -1;
  int rc = 0;
  while (at < (off_t)bytes && rc == 0) {
    off_t data = lseek(from, at, SEEK_DATA);
    if (data < 0) break; /* no data past `at` */
    off_t hole = lseek(from, data, SEEK_HOLE);
    if (hole < 0 || hole > (off_t)bytes) hole = (off_t)bytes;
    for (off_t off = data; off < hole && rc == 0; off += HOST_PAGE) {
      size_t n = (size_t)(hole - off < HOST_PAGE ? hole - off : HOST_PAGE);
      if (pread(from, page, n, off) != (ssize_t)n || pwrite(to, page, n, off) != (ssize_t)n) rc = -1;
    }
    at = hole;
  }
  free(page);
  return rc;
}

int brig_python_image_save(const brig_python_image* img, const char* path) {
  const char* key = brig_python_image_file_key();
  if (!key[0]) {
    errno = ENOTSUP;
    return -1;
  }
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) return -1;
  buffer b = {0};
  int rc = -1;
  if (ftruncate(fd, img->memory_bytes) != 0 || copy_memory(img->memfd, fd, img->memory_bytes) != 0) goto done;

  uint32_t key_len = (uint32_t)strlen(key);
  const Z_python_instance_t* m = &img->module;
  uint64_t magic = TRAILER_MAGIC;
  if (PUT(&b, magic) || PUT(&b, key_len) || put(&b, key, key_len) || PUT(&b, img->memory_bytes) ||
      PUT(&b, m->w2c_memory.max_pages) || PUT(&b, m->w2c_g0) || PUT(&b, img->table_size) ||
      PUT(&b, m->w2c_T0.max_size)) {
    goto done;
  }
  for (uint32_t i = 0; i < img->table_size; i++) {
    const wasm_rt_funcref_t* e = &img->table[i];
    int64_t offset = e->func ? (int64_t)((uintptr_t)e->func - anchor()) : NULL_FUNC;
    uint8_t has_instance = e->module_instance != NULL;
    if (PUT(&b, e->func_type) || PUT(&b, offset) || PUT(&b, has_instance)) goto done;
  }
  if (PUT(&b, img->warm_count)) goto done;
  for (uint32_t i = 0; i < img->warm_count; i++) {
    if (PUT(&b, img->warm[i][0]) || PUT(&b, img->warm[i][1])) goto done;
  }
  uint64_t digest = brig_python_image_digest(img);
  if (PUT(&b, digest)) goto done;
  uint64_t trailer_at = img->memory_bytes;
  if (PUT(&b, trailer_at) || PUT(&b, magic)) goto done;
  if (pwrite(fd, b.data, b.size, (off_t)img->memory_bytes) != (ssize_t)b.size) goto done;
  if (fchmod(fd, 0600) != 0 || fsync(fd) != 0) goto done;
  if (rename(tmp, path) != 0) goto done;
  rc = 0;
done:
  if (rc != 0) {
    int saved = errno;
    unlink(tmp);
    errno = saved;
  }
  free(b.data);
  close(fd);
  return rc;
}

/* Owned by us and writable by no one else: the file and its directory. */
static int safely_owned(int fd, const char* path) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022)) return 0;
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char* slash = strrchr(dir, '/');
  if (slash == dir) slash[1] = '\0';
  else if (slash) *slash = '\0';
  else snprintf(dir, sizeof dir, ".");
  struct stat ds;
  return stat(dir, &ds) == 0 && ds.st_uid == geteuid() && !(ds.st_mode & 022);
}

brig_python_image* brig_python_image_load(const char* path) {
  const char* key = brig_python_image_file_key();
  if (!key[0]) {
    errno = ENOTSUP;
    return NULL;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  brig_python_image* img = NULL;
  char* trailer = NULL;
  if (!safely_owned(fd, path)) {
    errno = EPERM;
    goto fail;
  }
  errno = EINVAL; /* what every check below that fails means */
  struct stat st;
  uint64_t tail[2];
  if (fstat(fd, &st) != 0 || st.st_size < 16 || pread(fd, tail, sizeof tail, st.st_size - 16) != 16 ||
      tail[1] != TRAILER_MAGIC || tail[0] >= (uint64_t)st.st_size - 16 || tail[0] % HOST_PAGE != 0 ||
      st.st_size - 16 - tail[0] > (64u << 20)) {
    goto fail;
  }
  size_t trailer_size = (size_t)(st.st_size - 16 - tail[0]);
  trailer = malloc(trailer_size ? trailer_size : 1);
  if (!trailer || pread(fd, trailer, trailer_size, (off_t)tail[0]) != (ssize_t)trailer_size) goto fail;
  reader r = {trailer, trailer_size};

  uint64_t magic;
  uint32_t key_len;
  char saved_key[256];
  if (TAKE(&r, magic) || magic != TRAILER_MAGIC || TAKE(&r, key_len) || key_len >= sizeof saved_key ||
      brig_le_read_bytes(&r, saved_key, key_len)) {
    goto fail;
  }
  saved_key[key_len] = '\0';
  if (strcmp(saved_key, key) != 0) goto fail; /* another binary's image */

  img = calloc(1, sizeof *img);
  if (!img) goto fail;
  img->memfd = -1;
  Z_python_instance_t* m = &img->module;
  if (TAKE(&r, img->memory_bytes) || img->memory_bytes != tail[0] || img->memory_bytes % 65536 != 0 ||
      TAKE(&r, m->w2c_memory.max_pages) || TAKE(&r, m->w2c_g0) || TAKE(&r, img->table_size) ||
      img->table_size > MAX_TABLE || TAKE(&r, m->w2c_T0.max_size) || m->w2c_T0.max_size < img->table_size) {
    goto fail;
  }
  m->w2c_memory.pages = img->memory_bytes / 65536;
  m->w2c_memory.size = img->memory_bytes;
  if (m->w2c_memory.max_pages < m->w2c_memory.pages) goto fail;
  m->w2c_T0.size = img->table_size;
  img->table = calloc(img->table_size ? img->table_size : 1, sizeof *img->table);
  if (!img->table) goto fail;
  for (uint32_t i = 0; i < img->table_size; i++) {
    uint32_t func_type;
    int64_t offset;
    uint8_t has_instance;
    if (TAKE(&r, func_type) || TAKE(&r, offset) || TAKE(&r, has_instance) || has_instance > 1) goto fail;
    if (offset == NULL_FUNC) {
      if (has_instance) goto fail;
      continue;
    }
    uintptr_t func = anchor() + (uintptr_t)offset;
    /* Host code addresses: only ever into this executable's code. */
    if (func < g_text_lo || func >= g_text_hi) goto fail;
    img->table[i].func_type = func_type;
    img->table[i].func = (wasm_rt_function_ptr_t)func;
    img->table[i].module_instance = has_instance ? (void*)m : NULL; /* never read: calls pass their own */
  }
  if (TAKE(&r, img->warm_count) || img->warm_count > MAX_WARM) goto fail;
  img->warm = calloc(img->warm_count ? img->warm_count : 1, sizeof *img->warm);
  if (!img->warm) goto fail;
  uint32_t pages = img->memory_bytes / HOST_PAGE;
  for (uint32_t i = 0; i < img->warm_count; i++) {
    if (TAKE(&r, img->warm[i][0]) || TAKE(&r, img->warm[i][1]) || img->warm[i][0] > pages ||
        img->warm[i][1] > pages - img->warm[i][0]) {
      goto fail;
    }
  }
  uint64_t digest;
  if (TAKE(&r, digest) || r.left != 0) goto fail;
  img->memfd = fd; /* clones map the file itself, copy-on-write */
  /* The saving process hashed this memory; hashing it again would read every page. */
  if (brig_python_image_set_digest(img, digest) != 0) goto fail;
  img->keep_memories = 1; /* as brig_python_image_learn_warm_pages does */
  free(trailer);
  errno = 0;
  return img;
fail:
  {
    int saved = errno;
    free(trailer);
    if (img) {
      img->memfd = -1;
      brig_python_image_destroy(img);
    }
    close(fd);
    errno = saved;
  }
  return NULL;
}
