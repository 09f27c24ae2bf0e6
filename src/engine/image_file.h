/* Images on disk: a process saves the image it made so that the next process (the next
 * `brig exec`) maps it instead of starting CPython (~1 ms instead of ~100 ms).
 *
 * File layout: the image's linear memory at offset 0 (sparse: zero pages are holes), so that
 * clones map the file itself copy-on-write exactly as they map a memfd; then a trailer: a
 * magic number, the key of the binary that wrote it, the memory's size and maximum, the
 * stack pointer, the function table's size, the seed of the random stream the image was made
 * with, the warm pages, the image digest that page snapshots are checked against, and an
 * FNV-1a checksum of all that; then the trailer's offset and the magic number again in the
 * file's last 16 bytes.
 *
 * The file holds no code address and no table: a loaded image's function table is the
 * module's own, rebuilt from the module's element segment (brig_python_module_table). Every
 * field that reaches a clone's memory or globals is checked against the module before use
 * (the memory's size between the module's initial and maximum pages, the stack pointer the
 * module's, the table size the module's, the warm pages inside the memory, ascending), and a
 * file is used only if it is a regular file owned by this user and writable by nobody else
 * (the directories above it are image_cache.cc's business), was written by this very binary
 * (its key: guest build id and the executable's ELF build id), its checksum holds, and its
 * memory hashes to the recorded digest: hashed on load, or once per unchanged file where the
 * file system guarantees that every change of the file changes its ctime (the verification
 * record, image_file.c).
 *
 * Thread-safety: save and load may run on any thread; they share nothing. */
#ifndef BRIG_ENGINE_IMAGE_FILE_H_
#define BRIG_ENGINE_IMAGE_FILE_H_

#include "engine/python_instance.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What names this binary's images: "<guest build id>-<executable build id>" (the latter
 * empty if the executable has no ELF build id; then nothing is cached). Static storage. */
const char* brig_python_image_file_key(void);

/* Writes `image` to `path`: a temporary file in the same directory, then renamed over
 * `path`, so readers see the old file or the new one whole. 0, or -1 with errno set. */
int brig_python_image_save(const brig_python_image* image, const char* path);

/* How a loaded image's memory was found to match the digest recorded in its file. */
typedef enum {
  BRIG_IMAGE_CHECK_HASHED = 1,           /* hashed by this process */
  BRIG_IMAGE_CHECK_HASHED_AND_RECORDED,  /* ... which recorded that in "<path>.verified" */
  BRIG_IMAGE_CHECK_RECORDED,             /* an earlier process's record for the file's unchanged state */
} brig_image_check;

/* The image saved at `path` by this binary, or NULL: then *why is NULL if there is no file
 * (or it cannot be cached at all: no build id), else a short reason (static storage) why the
 * file there was refused: another binary's, damaged (trailer, or memory that does not hash to
 * the recorded digest), not safely owned, a field that does not fit the module. A refused
 * file is never mapped for a guest. `how` (may be NULL) says how the memory was checked.
 * May write "<path>.verified" (the verification record, image_file.c), a file of its own:
 * whoever removes images removes those too. A loaded image holds a shared lock (flock) on its
 * file for as long as it lives, so that whoever removes images can leave the ones in use;
 * where the file system has no locks, it is loaded without. */
brig_python_image* brig_python_image_load(const char* path, const char** why, brig_image_check* how);

#ifdef __cplusplus
}
#endif

#endif
