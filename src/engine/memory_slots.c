#include "engine/memory_slots.h"

#include <pthread.h>
#include <stddef.h>

/* Each kept item holds a few hundred KiB of private pages and an 8 GiB reservation: a few
 * per thread that creates sandboxes are enough. */
enum { kSlots = 16 };

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
  const void* owner;
  void* item;
} g_slots[kSlots];
static uint32_t g_count; /* g_slots[0, g_count) are in use; the last is the most recent */

int brig_memory_slots_put(const void* owner, void* item) {
  pthread_mutex_lock(&g_mu);
  int kept = g_count < kSlots;
  if (kept) {
    g_slots[g_count].owner = owner;
    g_slots[g_count].item = item;
    g_count++;
  }
  pthread_mutex_unlock(&g_mu);
  return kept;
}

int brig_memory_slots_full(void) {
  pthread_mutex_lock(&g_mu);
  int full = g_count == kSlots;
  pthread_mutex_unlock(&g_mu);
  return full;
}

void* brig_memory_slots_take(const void* owner) {
  void* item = NULL;
  pthread_mutex_lock(&g_mu);
  for (uint32_t i = g_count; i-- > 0;) {
    if (g_slots[i].owner != owner) continue;
    item = g_slots[i].item;
    g_slots[i] = g_slots[--g_count];
    break;
  }
  pthread_mutex_unlock(&g_mu);
  return item;
}

void brig_memory_slots_drain(const void* owner, void (*release)(void* item)) {
  void* items[kSlots];
  uint32_t n = 0;
  pthread_mutex_lock(&g_mu);
  for (uint32_t i = 0; i < g_count;) {
    if (g_slots[i].owner == owner) {
      items[n++] = g_slots[i].item;
      g_slots[i] = g_slots[--g_count];
    } else {
      i++;
    }
  }
  pthread_mutex_unlock(&g_mu);
  for (uint32_t i = 0; i < n; i++) release(items[i]);
}

uint32_t brig_memory_slots_count(const void* owner) {
  uint32_t n = 0;
  pthread_mutex_lock(&g_mu);
  for (uint32_t i = 0; i < g_count; i++) n += g_slots[i].owner == owner;
  pthread_mutex_unlock(&g_mu);
  return n;
}
