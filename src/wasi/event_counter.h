// brig::wasi::EventCounter: the count of one os.eventfd() inside a sandbox.
//
// Linux's eventfd(2) semantics, with the sandbox's rule that nothing ever waits (one guest
// thread, no other process): a read at 0 and a write past kMax answer EAGAIN at once
// (wasi_context.h, BrigFdEventfd).
//
// Thread-safety: none; owned by the descriptors of one context.
#ifndef BRIG_WASI_EVENT_COUNTER_H_
#define BRIG_WASI_EVENT_COUNTER_H_

#include <cstdint>

namespace brig::wasi {

struct EventCounter {
  static constexpr uint64_t kMax = UINT64_MAX - 1;  // Linux: 0xfffffffffffffffe
  uint64_t value = 0;                              // <= kMax
  bool semaphore = false;                          // EFD_SEMAPHORE: a read takes 1
};

}  // namespace brig::wasi

#endif
