/* Page-level state of an instance relative to the image it was cloned from: what a session's
 * snapshot holds (the pages that differ, the globals, the memory size) and what restoring
 * one needs. Pages are 4 KiB host pages.
 *
 * An image is identified by its digest, a hash of its memory. Each image is made with its own
 * random seed (its string-hash secret), so two images made separately differ; processes that
 * load the same image from the image cache share its digest, so a snapshot taken in one
 * process restores in another that uses the same image file.
 *
 * Thread-safety: the functions on an image may run on several threads at once; those on an
 * instance need the instance's owner thread (no guest call in progress).
 * What these functions learn about an image (a read-only view of it, its digest) is kept
 * until the process exits: use them only on images that live as long (the process image). */
#ifndef BRIG_ENGINE_PAGE_SNAPSHOT_H_
#define BRIG_ENGINE_PAGE_SNAPSHOT_H_

#include <stdint.h>

#include "engine/python_instance.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BRIG_HOST_PAGE 4096u

/* A 64-bit hash of the image's memory size and contents. The first call costs a pass over
 * the image's non-zero pages (a few ms); later calls return the cached value. */
uint64_t brig_python_image_digest(const brig_python_image* image);
/* Records the digest of an image whose digest is already known (loaded from the image cache,
 * which saved it), so that the first call above does not hash the whole image. Call before
 * sharing the image. Returns -1 if the host is out of memory. */
int brig_python_image_set_digest(const brig_python_image* image, uint64_t digest);
/* Hashes the image's memory and compares it with `expected` (what the image cache recorded
 * when it saved the image): 1 if equal (the digest is then known, as after set_digest), 0 if
 * not (nothing is kept), -1 if the host is out of memory. Costs what the first
 * brig_python_image_digest call costs. Call before sharing the image. */
int brig_python_image_verify_digest(const brig_python_image* image, uint64_t expected);

/* Called for each page that differs: `page` is its index (byte offset / 4096), `data` its
 * 4096 bytes in the instance, `base` the image's bytes at that page or NULL where the image
 * has zeros (holes, and pages past the image's memory). Return 0 to go on. */
typedef int (*brig_page_visitor)(void* ctx, uint32_t page, const uint8_t* data, const uint8_t* base);

/* Visits, in ascending order, every page of `p`'s memory whose bytes differ from `image`.
 * Only pages `p` has written since it was cloned can differ (found through
 * /proc/self/pagemap), so the cost is that of those pages, not of the whole memory.
 * REQUIRES: `p` is a clone of `image` (brig_python_instance_clone), no guest call running.
 * Returns the number of pages visited, -1 if /proc/self/pagemap cannot be read or memory
 * is short, -2 if `visit` stopped the walk. */
int64_t brig_python_instance_diff(const brig_python_image* image, brig_python_instance* p,
                                  brig_page_visitor visit, void* ctx);
/* The same walk without the comparison: visits every candidate page (one `p` wrote, or maps
 * from files of its own, or past the image), which may still hold the image's bytes; `visit`
 * compares it itself (once, where a caller that records differences would otherwise
 * compare twice). Returns the number of pages visited, or -1 / -2 as above.
 * `unfaulted`: the caller vouches that no page of p's memory was faulted in since the last
 * walk of `p` (by any thread: counted with getrusage's ru_minflt + ru_majflt around every
 * use of `p`) and that nothing remapped it since; the candidates of that walk are then
 * visited again without walking the page tables (~60 µs of a small session's save on a
 * virtual machine). A page becomes one this process wrote, or present past the image, only
 * through a fault, so the kept set holds every candidate; a page it holds that is no longer
 * private just reads as the image's bytes again. A layered `p`, or one whose memory changed
 * size (or is diffed against an image of another size), is walked anyway. *reused (if not
 * NULL): 1 if the kept candidates were used, else 0. */
int64_t brig_python_instance_candidates(const brig_python_image* image, brig_python_instance* p,
                                        brig_page_visitor visit, void* ctx, int unfaulted, int* reused);

/* 1 if `p`'s function table is the image's (same size, same functions in each slot):
 * page snapshots do not carry the table, so they are only valid while this holds. */
int brig_python_instance_table_matches(const brig_python_image* image, brig_python_instance* p);

/* The guest's mutable globals (its shadow-stack pointer). Returns how many there are and
 * copies at most `max` of them to `out`. */
uint32_t brig_python_instance_get_globals(brig_python_instance* p, uint64_t* out, uint32_t max);
/* Sets them; returns -1 if `count` is not the guest's global count. */
int brig_python_instance_set_globals(brig_python_instance* p, const uint64_t* values, uint32_t count);

/* Grows `p`'s linear memory to `pages` 64 KiB pages. 0 on success (also when it already
 * has them), -1 past its limit. */
int brig_python_instance_grow_to(brig_python_instance* p, uint32_t pages);

#ifdef __cplusplus
}
#endif

#endif
