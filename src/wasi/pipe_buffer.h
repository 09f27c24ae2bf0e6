// brig::wasi::PipeBuffer: the bytes in flight of one os.pipe() inside a sandbox.
//
// Both ends are descriptors of the same WasiContext (there is one guest thread and no other
// process), so nothing ever waits on a pipe: a read of an empty pipe and a write to a full one
// answer at once (wasi_context.h says what). The buffer holds at most kCapacity bytes, as a
// Linux pipe by default, so a guest cannot grow host memory through it.
//
// Thread-safety: none; owned by the descriptors of one context.
#ifndef BRIG_WASI_PIPE_BUFFER_H_
#define BRIG_WASI_PIPE_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <deque>

namespace brig::wasi {

struct PipeBuffer {
  static constexpr size_t kCapacity = 65536;  // Linux's default pipe size
  std::deque<uint8_t> bytes;                   // size() <= kCapacity
  size_t space() const { return kCapacity - bytes.size(); }
};

}  // namespace brig::wasi

#endif
