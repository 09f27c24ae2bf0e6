// Which 64-byte blocks of two 4 KiB pages differ: what a page snapshot looks at first (a page
// that differs from the image still holds the image's bytes in most of its blocks), so that
// only the differing blocks' 8-byte words are compared one by one.
//
// DifferingBlocks picks, once per process, the fastest variant this CPU runs (32-byte
// compares with AVX2 on x86-64: the build targets baseline x86-64); the variants give the
// same answer (tests/util/differing_blocks_test.cc).
//
// Thread-safety: plain functions over memory the caller owns.
#ifndef BRIG_UTIL_DIFFERING_BLOCKS_H_
#define BRIG_UTIL_DIFFERING_BLOCKS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace brig {

inline constexpr size_t kBlockPageBytes = 4096;  // the host page: 64 blocks of 64 bytes

// Bit b set = bytes [64b, 64b + 64) of `a` and `b` differ. REQUIRES: both hold 4096 bytes.
inline uint64_t DifferingBlocksPortable(const uint8_t* a, const uint8_t* b) {
  uint64_t blocks = 0;
  for (size_t block = 0; block < kBlockPageBytes / 64; block++) {
    uint64_t x[8], y[8], any = 0;
    std::memcpy(x, a + block * 64, 64);
    std::memcpy(y, b + block * 64, 64);
    for (int k = 0; k < 8; k++) any |= x[k] ^ y[k];
    if (any) blocks |= uint64_t{1} << block;
  }
  return blocks;
}

#if defined(__x86_64__)
// The same with 32-byte compares. REQUIRES: the CPU has AVX2 (__builtin_cpu_supports).
__attribute__((target("avx2"))) inline uint64_t DifferingBlocksAvx2(const uint8_t* a, const uint8_t* b) {
  uint64_t blocks = 0;
  for (size_t block = 0; block < kBlockPageBytes / 64; block++) {
    const auto* p = reinterpret_cast<const __m256i*>(a + block * 64);
    const auto* q = reinterpret_cast<const __m256i*>(b + block * 64);
    const __m256i x = _mm256_or_si256(_mm256_xor_si256(_mm256_loadu_si256(p), _mm256_loadu_si256(q)),
                                      _mm256_xor_si256(_mm256_loadu_si256(p + 1), _mm256_loadu_si256(q + 1)));
    if (!_mm256_testz_si256(x, x)) blocks |= uint64_t{1} << block;
  }
  return blocks;
}
#endif

namespace internal {
using DifferingBlocksFn = uint64_t (*)(const uint8_t*, const uint8_t*);
inline DifferingBlocksFn PickDifferingBlocks() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) return DifferingBlocksAvx2;
#endif
  return DifferingBlocksPortable;
}
inline const DifferingBlocksFn kDifferingBlocks = PickDifferingBlocks();
}  // namespace internal

// The fastest variant here. Measured in SavePages (sandbox_bench BM_LiveSessionSavePages):
// ~20% less CPU than the portable loop (bench/RESULTS.md, 2026-12-04 22:30).
inline uint64_t DifferingBlocks(const uint8_t* a, const uint8_t* b) { return internal::kDifferingBlocks(a, b); }

}  // namespace brig

#endif  // BRIG_UTIL_DIFFERING_BLOCKS_H_
