// DifferingBlocks and its variants against a byte-by-byte reference (util/differing_blocks.h):
// page snapshots record only the words of the blocks it reports, so a missed block would
// lose a session's bytes.
#include "util/differing_blocks.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace brig {
namespace {

uint64_t Reference(const uint8_t* a, const uint8_t* b) {
  uint64_t blocks = 0;
  for (size_t i = 0; i < kBlockPageBytes; i++) {
    if (a[i] != b[i]) blocks |= uint64_t{1} << (i / 64);
  }
  return blocks;
}

// Pages that differ in 0 to a few hundred single bytes (each byte of each block in turn
// among them), at every alignment of the buffers.
class DifferingBlocksTest : public ::testing::Test {
 protected:
  template <typename Fn>
  void AgreesWithTheReference(Fn fn) {
    std::mt19937_64 rng(42);
    std::vector<uint8_t> abuf(kBlockPageBytes + 64), bbuf(kBlockPageBytes + 64);
    for (int round = 0; round < 2000; round++) {
      const size_t offset = static_cast<size_t>(round) % 33;  // unaligned loads too
      uint8_t* a = abuf.data() + offset;
      uint8_t* b = bbuf.data() + (offset * 7) % 33;
      for (size_t i = 0; i < kBlockPageBytes; i++) a[i] = b[i] = static_cast<uint8_t>(rng());
      const int changes = round < 64 ? 1 : static_cast<int>(rng() % 300);
      for (int c = 0; c < changes; c++) {
        // The first 64 rounds: one byte, in block `round`, at a position that moves.
        const size_t at = round < 64 ? static_cast<size_t>(round) * 64 + (static_cast<size_t>(round) * 13) % 64
                                     : rng() % kBlockPageBytes;
        b[at] = static_cast<uint8_t>(a[at] ^ (1u << (rng() % 8)));
      }
      ASSERT_EQ(fn(a, b), Reference(a, b)) << "round " << round;
    }
    std::vector<uint8_t> same(kBlockPageBytes, 7);
    EXPECT_EQ(fn(same.data(), same.data()), 0u);
    std::vector<uint8_t> other(kBlockPageBytes, 8);
    EXPECT_EQ(fn(same.data(), other.data()), ~uint64_t{0});
  }
};

TEST_F(DifferingBlocksTest, PortableAgreesWithTheReference) { AgreesWithTheReference(DifferingBlocksPortable); }

TEST_F(DifferingBlocksTest, Avx2AgreesWithTheReference) {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx2")) GTEST_SKIP() << "no AVX2 here";
  AgreesWithTheReference(DifferingBlocksAvx2);
#else
  GTEST_SKIP() << "not x86-64";
#endif
}

TEST_F(DifferingBlocksTest, TheChosenVariantAgreesWithTheReference) { AgreesWithTheReference(DifferingBlocks); }

}  // namespace
}  // namespace brig
