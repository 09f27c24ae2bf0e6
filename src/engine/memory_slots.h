/* A small process-wide free list of instances whose memory was reset to their image, so that
 * the next clone of that image reuses the mapping (its pages already private and present)
 * instead of mapping a new reservation and taking a fault per page it writes.
 *
 * The list only holds items; what an item is and how it is reset is python_instance.c's.
 * Thread-safety: every function may be called from any thread (one mutex). */
#ifndef BRIG_ENGINE_MEMORY_SLOTS_H_
#define BRIG_ENGINE_MEMORY_SLOTS_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Keeps `item` for a later brig_memory_slots_take(owner). 1 if kept, 0 if the list is full
 * (the caller then frees the item itself). */
int brig_memory_slots_put(const void* owner, void* item);
/* 1 if a put would find no room now (another thread may free one at any time). */
int brig_memory_slots_full(void);
/* The item most recently kept for `owner`, removed from the list, or NULL. */
void* brig_memory_slots_take(const void* owner);
/* Removes every item kept for `owner` and calls release(item) on each (outside the lock). */
void brig_memory_slots_drain(const void* owner, void (*release)(void* item));
/* How many items are kept for `owner` now. */
uint32_t brig_memory_slots_count(const void* owner);

#ifdef __cplusplus
}
#endif

#endif
