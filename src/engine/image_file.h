/* Images on disk: a process saves the image it made so that the next process (the next
 * `brig exec`) maps it instead of starting CPython (~1 ms instead of ~100 ms).
 *
 * File layout: the image's linear memory at offset 0 (sparse: zero pages are holes), so that
 * clones map the file itself copy-on-write exactly as they map a memfd; then a trailer with
 * what else the image holds (globals, memory and table sizes, the function table as offsets
 * from an anchor function of this binary, the warm pages, the image digest that page
 * snapshots are checked against), then the trailer's offset and a
 * magic number in the file's last 16 bytes.
 *
 * A saved image is only valid for the binary that saved it: function addresses are stored
 * relative to this binary's code, and the file is keyed by the guest build id and the
 * executable's ELF build id. Since it holds host code addresses, a file is used only if it
 * is owned by this user and writable by nobody else (as ssh treats its keys), and every
 * table entry must point into this executable's code.
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

/* The image saved at `path` by this binary; NULL if there is none, or it is another
 * binary's, damaged, or not safely owned (errno says which, best effort). */
brig_python_image* brig_python_image_load(const char* path);

#ifdef __cplusplus
}
#endif

#endif
