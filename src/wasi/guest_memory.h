// GuestMemory: the only way brig's WASI code touches a guest's linear memory.
//
// Every access checks `ptr + len <= size` in 64-bit arithmetic (no u32 wrap-around) before
// touching a byte; a failed check touches nothing and the caller returns EFAULT. Guest
// data is untrusted: copy it out (CopyIn / Read / ReadString), then validate, then use.
// View() hands out a checked span for bulk data (file contents), whose bytes may be
// anything. Layouts are little-endian, which the host must be too.
//
// Thread-safety: a plain view over memory the caller owns; built fresh per call.
// Lifetime: `base` must stay valid while the GuestMemory is used.
#ifndef BRIG_WASI_GUEST_MEMORY_H_
#define BRIG_WASI_GUEST_MEMORY_H_

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

#include "wasi/wasi_types.h"

namespace brig::wasi {

static_assert(std::endian::native == std::endian::little, "WASI layouts are copied as-is");

class GuestMemory {
 public:
  GuestMemory(uint8_t* base, uint64_t size) : base_(base), size_(base ? size : 0) {}

  uint64_t size() const { return size_; }
  // True iff [ptr, ptr + len) lies inside the memory (no overflow possible).
  bool InBounds(uint64_t ptr, uint64_t len) const { return ptr <= size_ && len <= size_ - ptr; }

  // Copies guest bytes out to the host. False (nothing copied) if out of bounds.
  [[nodiscard]] bool CopyIn(uint64_t ptr, void* dst, uint64_t len) const {
    if (!InBounds(ptr, len)) return false;
    if (len) std::memcpy(dst, base_ + ptr, len);
    return true;
  }
  // Copies host bytes into the guest. False (nothing written) if out of bounds.
  [[nodiscard]] bool CopyOut(uint64_t ptr, const void* src, uint64_t len) {
    if (!InBounds(ptr, len)) return false;
    if (len) std::memcpy(base_ + ptr, src, len);
    return true;
  }
  template <typename T>
  [[nodiscard]] bool Read(uint64_t ptr, T* out) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return CopyIn(ptr, out, sizeof(T));
  }
  template <typename T>
  [[nodiscard]] bool Write(uint64_t ptr, const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    return CopyOut(ptr, &v, sizeof(T));
  }
  // True iff an array of `count` T at `ptr` is in bounds (count * sizeof(T) overflow-checked).
  template <typename T>
  bool ArrayInBounds(uint64_t ptr, uint64_t count) const {
    if (count > size_ / sizeof(T)) return false;
    return InBounds(ptr, count * sizeof(T));
  }
  // Copies a guest string of `len` bytes. Returns err::kSuccess, err::kNameTooLong when
  // len > max (nothing read), or err::kFault when out of bounds. NUL bytes are kept: the
  // caller decides (the VFS refuses them).
  [[nodiscard]] uint32_t ReadString(uint64_t ptr, uint64_t len, uint64_t max, std::string* out) const {
    if (len > max) return err::kNameTooLong;
    if (!InBounds(ptr, len)) return err::kFault;
    out->assign(reinterpret_cast<const char*>(base_ + ptr), len);
    return err::kSuccess;
  }
  // A checked span over guest bytes (for bulk reads/writes), or nullopt if out of bounds.
  std::optional<std::span<uint8_t>> View(uint64_t ptr, uint64_t len) {
    if (!InBounds(ptr, len)) return std::nullopt;
    return std::span<uint8_t>(base_ + ptr, len);
  }

 private:
  uint8_t* base_;
  uint64_t size_;
};

}  // namespace brig::wasi

#endif
