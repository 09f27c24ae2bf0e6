/* Files behind linear memories, and which pages of a mapping a process changed.
 *
 * A linear memory made from an image is a stack of copy-on-write mappings: the image's memfd,
 * optionally a layer (a memfd holding pages a session changed, for forks) and the frozen
 * growth files of the session (memory it grew into, written in place while the session
 * owned it alone). A brig_mem_file is one such memfd: reference-counted, read through a
 * read-only view without allocating pages for its holes, and never written once shared.
 *
 * Thread-safety: a brig_mem_file is immutable once made (its reference count is atomic), so
 * several instances on several threads may map and read it at once. */
#ifndef BRIG_ENGINE_MEMORY_FILES_H_
#define BRIG_ENGINE_MEMORY_FILES_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BRIG_PAGE 4096u

typedef struct brig_mem_file brig_mem_file;

/* Takes ownership of `fd` (a memfd of `bytes` bytes whose content is final): maps a read-only
 * view and records which pages hold data (the rest are holes: zeros). NULL (fd closed) if the
 * view cannot be mapped or memory is short. */
brig_mem_file* brig_mem_file_adopt(int fd, uint64_t bytes);
brig_mem_file* brig_mem_file_ref(brig_mem_file* f);
void brig_mem_file_unref(brig_mem_file* f);
int brig_mem_file_fd(const brig_mem_file* f);
uint64_t brig_mem_file_bytes(const brig_mem_file* f);
/* The 4 KiB at file page `page`, or NULL where the file has a hole or ends (zeros). */
const uint8_t* brig_mem_file_page(const brig_mem_file* f, uint64_t page);
/* The file's data extents: [*first, *end) file pages of extent i (i < count). */
uint32_t brig_mem_file_extent_count(const brig_mem_file* f);
void brig_mem_file_extent(const brig_mem_file* f, uint32_t i, uint64_t* first, uint64_t* end);
/* Bytes of page cache the file holds (its data pages). */
uint64_t brig_mem_file_data_bytes(const brig_mem_file* f);

/* Pages of [addr, addr + pages * 4096) that this process wrote since they were mapped: present
 * and anonymous (a private copy, not the file's page and not the shared zero page). Calls
 * visit(ctx, first, count) for each run, in ascending order, with page indexes relative to
 * `addr`; a non-zero return stops the walk. Uses the PAGEMAP_SCAN ioctl (Linux >= 6.7) when
 * there is one, else reads /proc/self/pagemap. Returns 0, -1 if neither works, or the visitor's
 * non-zero value. */
typedef int (*brig_page_run_visitor)(void* ctx, uint64_t first, uint64_t count);
int brig_written_pages(const uint8_t* addr, uint64_t pages, brig_page_run_visitor visit, void* ctx);
/* Like brig_written_pages, but also the private pages that are swapped out: every page of the
 * range whose bytes may not be the file's. Needs PAGEMAP_SCAN (-1 without it), so that callers
 * that must not miss a page fall back to treating the whole range as written. */
int brig_private_pages(const uint8_t* addr, uint64_t pages, brig_page_run_visitor visit, void* ctx);

#ifdef __cplusplus
}
#endif

#endif
