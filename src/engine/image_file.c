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
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "engine/page_snapshot.h"
#include "engine/python_instance_internal.h"
#include "util/little_endian.h"

extern const char brig_guest_build_id[];

#define TRAILER_MAGIC 0x33474d4947495242ull /* "BRIGIMG3" little-endian */
/* Bounds no real image comes near; a trailer past them is damaged. */
#define MAX_TRAILER (16u << 20)
#define MAX_KEY 255u

/* ---- this executable's ELF build id ---- */

static char g_key[MAX_KEY + 1];
static pthread_once_t g_exe_once = PTHREAD_ONCE_INIT;

static int find_exe(struct dl_phdr_info* info, size_t size, void* data) {
  (void)size;
  (void)data;
  /* The first object reported is the executable itself. */
  char id_hex[2 * 64 + 1] = "";
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr)* ph = &info->dlpi_phdr[i];
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

/* ---- the trailer: host byte order (little-endian here); the key ties it to this binary ---- */

/* FNV-1a, 64 bits: detects a damaged trailer (tests recompute it to reach the field checks). */
static uint64_t checksum(const void* p, size_t n) {
  const uint8_t* b = p;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

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

/* Why an image with these fields must not be run, or NULL. Checked before saving too, so
 * that no process writes a file it would refuse. Every field that reaches a clone's memory,
 * globals or table is here; the table itself is never in the file (brig_python_module_table). */
static const char* check_fields(uint32_t memory_bytes, uint32_t max_pages, uint32_t g0, uint32_t table_size,
                                uint32_t (*warm)[2], uint32_t warm_count, uint64_t digest) {
  uint32_t module_max = BRIG_W2C_MEMORY_MAX_PAGES < 65536u ? BRIG_W2C_MEMORY_MAX_PAGES : 65536u;
  if (memory_bytes % 65536u != 0 || memory_bytes / 65536u < BRIG_W2C_MEMORY_PAGES ||
      max_pages < memory_bytes / 65536u || max_pages > module_max) {
    return "memory size or maximum outside the module's";
  }
  if (g0 != BRIG_W2C_G0_INITIAL) return "stack pointer is not the module's";
  if (table_size != BRIG_W2C_TABLE_SIZE) return "function table size is not the module's";
  uint32_t pages = memory_bytes / HOST_PAGE, next = 0;
  for (uint32_t i = 0; i < warm_count; i++) {
    if (warm[i][0] < next || warm[i][1] == 0 || warm[i][0] > pages || warm[i][1] > pages - warm[i][0]) {
      return "warm pages outside the memory or out of order";
    }
    next = warm[i][0] + warm[i][1];
  }
  if (digest == 0) return "no digest";
  return NULL;
}

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
  const Z_python_instance_t* m = &img->module;
  uint64_t digest = brig_python_image_digest(img);
  if (check_fields(img->memory_bytes, m->w2c_memory.max_pages, m->w2c_g0, img->table_size, img->warm,
                   img->warm_count, digest) != NULL) {
    errno = EINVAL; /* a later process would refuse it */
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
  uint64_t magic = TRAILER_MAGIC;
  if (PUT(&b, magic) || PUT(&b, key_len) || put(&b, key, key_len) || PUT(&b, img->memory_bytes) ||
      PUT(&b, m->w2c_memory.max_pages) || PUT(&b, m->w2c_g0) || PUT(&b, img->table_size) ||
      PUT(&b, img->random_seed) || PUT(&b, img->warm_count)) {
    goto done;
  }
  for (uint32_t i = 0; i < img->warm_count; i++) {
    if (PUT(&b, img->warm[i][0]) || PUT(&b, img->warm[i][1])) goto done;
  }
  if (PUT(&b, digest)) goto done;
  uint64_t sum = checksum(b.data, b.size);
  uint64_t trailer_at = img->memory_bytes;
  if (PUT(&b, sum) || PUT(&b, trailer_at) || PUT(&b, magic)) goto done;
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

/* ---- the verification record: the memory was hashed once, for the file as it then was ----
 *
 * Hashing the ~9.5 MB of an image's data pages costs more than the rest of `brig exec -c
 * pass` (bench/RESULTS.md), and the cost is the memory traffic, not the hash function. So a
 * process that hashed the memory and found the digest records that, for the file's state
 * (device, inode, size, mtime, ctime), in "<image>.verified"; later processes that find the
 * file in exactly that state skip the hash. This is sound only because nobody but root can
 * change a file without changing its ctime, which holds where:
 *  - every write(2), truncate, fallocate, clone and chmod sets ctime to "now" (the coarse
 *    clock, or finer; never earlier than CLOCK_REALTIME_COARSE read before it);
 *  - writes through a shared writable mapping set it too, at the write fault that makes a
 *    clean page dirty; but a page already dirty and mapped writable takes further writes
 *    without a fault, so before the state is taken the file is fsync'ed: its pages are then
 *    clean and write-protected in every mapping, and the next write faults. That needs a
 *    file system that tracks dirty pages of shared mappings (page_mkwrite): ext4, xfs and
 *    btrfs do; tmpfs does not (its mappings stay writable), and others are not known, so
 *    there nothing is recorded and every load hashes;
 *  - a write in the same clock tick as the state is taken could leave ctime unchanged, so a
 *    state is recorded only if its ctime is over a second older than the clock read before
 *    the fsync, and only if the file's state after hashing is the same as before.
 * A record is no stronger than the digest beside it: whoever can write the file can also
 * write the record (as the digest), so it stops changes made without knowing the format, not
 * a forger running as this user (README, docs/architecture.md). */

#define RECORD_MAGIC 0x31564d4947495242ull /* "BRIGIMV1" */
#define RECORD_MARGIN_NS 1000000000ll
#define RECORD_SUFFIX ".verified"

typedef struct {
  uint64_t dev, ino, size;
  int64_t mtime_s, mtime_ns, ctime_s, ctime_ns;
} file_state;

static int state_of(int fd, file_state* s) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -1;
  *s = (file_state){(uint64_t)st.st_dev, (uint64_t)st.st_ino, (uint64_t)st.st_size,
                    st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec};
  return 0;
}

static int same_state(const file_state* a, const file_state* b) {
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_s == b->mtime_s &&
         a->mtime_ns == b->mtime_ns && a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns;
}

/* 1 if every change of a file there changes its ctime, shared mappings included (above). */
static int tracks_changes(int fd) {
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0) return 0;
  switch ((unsigned long)fs.f_type) {
    case EXT4_SUPER_MAGIC: /* also ext2 and ext3: one magic */
    case XFS_SUPER_MAGIC:
    case BTRFS_SUPER_MAGIC:
      return 1;
    default:
      return 0;
  }
}

static int record_path(const char* path, char* out, size_t size) {
  return snprintf(out, size, "%s%s", path, RECORD_SUFFIX) < (int)size ? 0 : -1;
}

/* The record's bytes for this file state, key and digest. */
static int record_bytes(buffer* b, const file_state* s, const char* key, uint64_t digest) {
  uint64_t magic = RECORD_MAGIC;
  uint32_t key_len = (uint32_t)strlen(key);
  if (PUT(b, magic) || PUT(b, key_len) || put(b, key, key_len) || PUT(b, s->dev) || PUT(b, s->ino) ||
      PUT(b, s->size) || PUT(b, s->mtime_s) || PUT(b, s->mtime_ns) || PUT(b, s->ctime_s) ||
      PUT(b, s->ctime_ns) || PUT(b, digest)) {
    return -1;
  }
  uint64_t sum = checksum(b->data, b->size);
  return PUT(b, sum);
}

/* 1 if "<path>.verified" records that the memory of the file in state `s` (this key, this
 * digest) was hashed and matched. The record must be a regular file of this user's that
 * nobody else can write, as the image. */
static int record_holds(const char* path, const file_state* s, const char* key, uint64_t digest) {
  char rpath[PATH_MAX];
  if (record_path(path, rpath, sizeof rpath) != 0) return 0;
  int fd = open(rpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return 0;
  buffer want = {0};
  char got[512];
  struct stat st;
  int holds = 0;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 022) &&
      record_bytes(&want, s, key, digest) == 0 && want.size <= sizeof got && (off_t)want.size == st.st_size &&
      pread(fd, got, want.size, 0) == (ssize_t)want.size) {
    holds = memcmp(got, want.data, want.size) == 0;
  }
  free(want.data);
  close(fd);
  return holds;
}

/* Writes the record (best effort: without it, the next process hashes again). */
static void write_record(const char* path, const file_state* s, const char* key, uint64_t digest) {
  char rpath[PATH_MAX], tmp[PATH_MAX];
  if (record_path(path, rpath, sizeof rpath) != 0 || snprintf(tmp, sizeof tmp, "%s.XXXXXX", rpath) >= (int)sizeof tmp) {
    return;
  }
  buffer b = {0};
  if (record_bytes(&b, s, key, digest) != 0) goto done;
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) goto done;
  int ok = pwrite(fd, b.data, b.size, 0) == (ssize_t)b.size && fchmod(fd, 0600) == 0;
  close(fd);
  if (!ok || rename(tmp, rpath) != 0) unlink(tmp);
done:
  free(b.data);
}

static int64_t ns_of(int64_t s, int64_t ns) { return s * 1000000000ll + ns; }

/* Checks the memory of `img` (its memfd: the file at `path`) against `digest`: 1 if it
 * matches, 0 if not, -1 if out of memory; *how says whether it was hashed (and recorded)
 * or an earlier process's record for the file's unchanged state was trusted. */
static int check_memory(brig_python_image* img, const char* path, const char* key, uint64_t digest,
                        brig_image_check* how) {
  int fd = img->memfd;
  struct timespec start;
  file_state s0, s1, s2;
  int known = clock_gettime(CLOCK_REALTIME_COARSE, &start) == 0 && state_of(fd, &s0) == 0;
  if (known && record_holds(path, &s0, key, digest)) {
    *how = BRIG_IMAGE_CHECK_RECORDED;
    return brig_python_image_set_digest(img, digest) == 0 ? 1 : -1;
  }
  int may_record = known && tracks_changes(fd) &&
                   ns_of(s0.ctime_s, s0.ctime_ns) < ns_of(start.tv_sec, start.tv_nsec) - RECORD_MARGIN_NS &&
                   fsync(fd) == 0 && state_of(fd, &s1) == 0 && same_state(&s0, &s1);
  int verified = brig_python_image_verify_digest(img, digest);
  *how = BRIG_IMAGE_CHECK_HASHED;
  if (verified == 1 && may_record && state_of(fd, &s2) == 0 && same_state(&s1, &s2)) {
    write_record(path, &s1, key, digest);
    *how = BRIG_IMAGE_CHECK_HASHED_AND_RECORDED;
  }
  return verified;
}

/* `path` opened for reading with a shared lock on it (flock), which it holds until closed:
 * whoever removes image files (image_cache.cc) leaves a locked one, since a process maps it.
 * A file removed or replaced between the open and the lock (the remover held the lock) is
 * not the one at `path` any more: opened again. -1 with errno set (ENOENT: no file). */
static int open_locked(const char* path) {
  for (int attempt = 0; attempt < 8; attempt++) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK); /* a FIFO: no wait */
    if (fd < 0) return -1;
    int r;
    while ((r = flock(fd, LOCK_SH)) != 0 && errno == EINTR) {
    }
    if (r != 0) return fd; /* a file system without locks: used unlocked (it may be removed) */
    struct stat held, named;
    if (fstat(fd, &held) == 0 && lstat(path, &named) == 0 && held.st_dev == named.st_dev &&
        held.st_ino == named.st_ino) {
      return fd;
    }
    close(fd); /* removed or replaced meanwhile: what `path` names now is another file, or none */
  }
  errno = ENOENT;
  return -1;
}

brig_python_image* brig_python_image_load(const char* path, const char** why, brig_image_check* how) {
  const char* key = brig_python_image_file_key();
  brig_image_check ignored;
  if (!how) how = &ignored;
  *why = NULL;
  if (!key[0]) {
    errno = ENOTSUP;
    return NULL;
  }
  int fd = open_locked(path);
  if (fd < 0) {
    if (errno != ENOENT) *why = errno == ELOOP ? "a symbolic link" : "cannot be opened";
    return NULL;
  }
  brig_python_image* img = NULL;
  char* trailer = NULL;
  const char* bad = NULL;
  struct stat st;
  uint64_t tail[2];
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    bad = "not a regular file";
    goto fail;
  }
  /* As ssh treats its keys: only this user may have written it. */
  if (st.st_uid != geteuid() || (st.st_mode & 022)) {
    bad = "not owned by this user, or writable by others";
    goto fail;
  }
  bad = "damaged (no trailer)";
  if (st.st_size < 16 || pread(fd, tail, sizeof tail, st.st_size - 16) != 16 || tail[1] != TRAILER_MAGIC ||
      tail[0] >= (uint64_t)st.st_size - 16 || tail[0] % 65536u != 0 || tail[0] > UINT32_MAX ||
      st.st_size - 16 - tail[0] > MAX_TRAILER || st.st_size - 16 - tail[0] < 8 + sizeof(uint64_t)) {
    goto fail;
  }
  size_t trailer_size = (size_t)(st.st_size - 16 - tail[0]);
  trailer = malloc(trailer_size);
  if (!trailer || pread(fd, trailer, trailer_size, (off_t)tail[0]) != (ssize_t)trailer_size) goto fail;
  uint64_t sum;
  memcpy(&sum, trailer + trailer_size - sizeof sum, sizeof sum);
  bad = "damaged (checksum)";
  if (checksum(trailer, trailer_size - sizeof sum) != sum) goto fail;
  reader r = {trailer, trailer_size - sizeof sum};

  uint64_t magic;
  uint32_t key_len;
  char saved_key[MAX_KEY + 1];
  bad = "damaged (fields)";
  if (TAKE(&r, magic) || magic != TRAILER_MAGIC || TAKE(&r, key_len) || key_len > MAX_KEY ||
      brig_le_read_bytes(&r, saved_key, key_len)) {
    goto fail;
  }
  saved_key[key_len] = '\0';
  if (strcmp(saved_key, key) != 0) {
    bad = "made by another build of brig";
    goto fail;
  }

  img = calloc(1, sizeof *img);
  if (!img) goto fail;
  img->memfd = -1;
  Z_python_instance_t* m = &img->module;
  uint32_t table_size;
  if (TAKE(&r, img->memory_bytes) || img->memory_bytes != tail[0] || TAKE(&r, m->w2c_memory.max_pages) ||
      TAKE(&r, m->w2c_g0) || TAKE(&r, table_size) || TAKE(&r, img->random_seed) || TAKE(&r, img->warm_count) ||
      img->warm_count > img->memory_bytes / HOST_PAGE) {
    goto fail;
  }
  img->warm = calloc(img->warm_count ? img->warm_count : 1, sizeof *img->warm);
  if (!img->warm) goto fail;
  for (uint32_t i = 0; i < img->warm_count; i++) {
    if (TAKE(&r, img->warm[i][0]) || TAKE(&r, img->warm[i][1])) goto fail;
  }
  uint64_t digest;
  if (TAKE(&r, digest) || r.left != 0) goto fail;
  bad = check_fields(img->memory_bytes, m->w2c_memory.max_pages, m->w2c_g0, table_size, img->warm,
                     img->warm_count, digest);
  if (bad) goto fail;

  m->w2c_memory.pages = img->memory_bytes / 65536u;
  m->w2c_memory.size = img->memory_bytes;
  /* The table is the module's own, rebuilt from its element segment: nothing of the file. */
  img->table = brig_python_module_table();
  img->table_size = BRIG_W2C_TABLE_SIZE;
  m->w2c_T0.max_size = BRIG_W2C_TABLE_SIZE;
  img->memfd = fd; /* clones map the file itself, copy-on-write */
  /* The memory must match the digest the saving process recorded: a file damaged or changed
   * in place after it was written is refused, never run. (Its trailer is checksummed and
   * every field checked above; this covers the rest.) Hashed here, or by an earlier process
   * that recorded it for the file's unchanged state (check_memory). */
  int verified = check_memory(img, path, key, digest, how);
  bad = verified < 0 ? "out of memory" : "damaged (its memory does not match its digest)";
  if (verified != 1) goto fail;
  img->keep_memories = 1; /* as brig_python_image_learn_warm_pages does */
  free(trailer);
  errno = 0;
  return img;
fail:
  free(trailer);
  if (img) {
    img->memfd = -1;
    brig_python_image_destroy(img);
  }
  close(fd);
  *why = bad;
  errno = EINVAL;
  return NULL;
}
