// util/little_endian.h: loads and stores at every width and alignment, the reader's bounds
// (a read that does not fit reads and moves nothing), and the same header compiled as C.
#include <gtest/gtest.h>

#include "util/little_endian.h"

extern "C" int brig_test_le_parse_c(const char* data, size_t size, uint32_t* n, char* bytes, uint64_t* u, int64_t* i,
                                    uint8_t* b);
extern "C" int brig_test_le_store_c(char* out, const void* v, size_t size);

namespace brig {
namespace {

TEST(LittleEndianTest, LoadsAndStoresAnyAlignment) {
  const unsigned char bytes[] = {0xFF, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xFF};
  EXPECT_EQ(brig_le_load16(bytes + 1), 0x0201u);
  EXPECT_EQ(brig_le_load32(bytes + 1), 0x04030201u);
  EXPECT_EQ(brig_le_load64(bytes + 1), 0x0807060504030201ull);
  EXPECT_EQ(brig_le_load32(bytes + 6), 0xFF080706u);
  char out[11] = {};
  brig_le_store64(out + 3, 0x0807060504030201ull);
  EXPECT_EQ(std::string(out + 3, 8), std::string("\x01\x02\x03\x04\x05\x06\x07\x08"));
  brig_le_store32(out + 1, 0xA1B2C3D4u);
  EXPECT_EQ(std::string(out + 1, 4), std::string("\xD4\xC3\xB2\xA1"));
  brig_le_store16(out, 0xBEEF);
  EXPECT_EQ(std::string(out, 2), std::string("\xEF\xBE"));
  EXPECT_EQ(brig_le_load64("\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF"), UINT64_MAX);
}

TEST(LittleEndianTest, ReaderReadsInOrderAndRefusesPastTheEnd) {
  std::string data;
  AppendLe32(&data, 3);
  data += "abc";
  AppendLe64(&data, 0x1122334455667788ull);
  data += '\x7F';
  LeReader r(data);
  uint32_t n = 0;
  std::string_view bytes;
  uint64_t big = 0;
  uint8_t small = 0;
  ASSERT_TRUE(r.U32(&n));
  EXPECT_EQ(n, 3u);
  ASSERT_TRUE(r.Bytes(n, &bytes));
  EXPECT_EQ(bytes, "abc");
  EXPECT_EQ(r.remaining(), 9u);
  ASSERT_TRUE(r.U64(&big));
  EXPECT_EQ(big, 0x1122334455667788ull);
  // One byte left: wider reads fail and leave it there.
  uint16_t half = 0xAAAA;
  EXPECT_FALSE(r.U16(&half));
  EXPECT_EQ(half, 0xAAAA);
  EXPECT_FALSE(r.U32(&n));
  EXPECT_FALSE(r.Bytes(2, &bytes));
  EXPECT_EQ(r.remaining(), 1u);
  EXPECT_EQ(r.rest(), "\x7F");
  ASSERT_TRUE(r.U8(&small));
  EXPECT_EQ(small, 0x7F);
  EXPECT_FALSE(r.U8(&small));
  EXPECT_TRUE(r.Bytes(0, &bytes));
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(LittleEndianTest, LengthsFromTheDataCannotOverflowTheReader) {
  std::string data;
  AppendLe64(&data, UINT64_MAX);  // a length that no buffer holds
  data += "xyz";
  LeReader r(data);
  uint64_t n = 0;
  ASSERT_TRUE(r.U64(&n));
  std::string_view bytes;
  EXPECT_FALSE(r.Bytes(n, &bytes));
  EXPECT_FALSE(r.Bytes(SIZE_MAX, &bytes));
  EXPECT_EQ(r.remaining(), 3u);
  EXPECT_TRUE(LeReader("").rest().empty());
}

TEST(LittleEndianTest, UsableFromC) {
  std::string data;
  AppendLe32(&data, 2);
  data += "hi";
  AppendLe64(&data, 0xF00DF00DF00DF00Dull);
  AppendLe64(&data, static_cast<uint64_t>(INT64_MIN));
  data += '\x01';
  uint32_t n = 0;
  char bytes[16] = {};
  uint64_t u = 0;
  int64_t i = 0;
  uint8_t b = 0;
  ASSERT_EQ(brig_test_le_parse_c(data.data(), data.size(), &n, bytes, &u, &i, &b), 0);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(std::string(bytes, 2), "hi");
  EXPECT_EQ(u, 0xF00DF00DF00DF00Dull);
  EXPECT_EQ(i, INT64_MIN);
  EXPECT_EQ(b, 1);
  // Every truncation, and one byte too many, fail.
  for (size_t cut = 0; cut < data.size(); ++cut) {
    EXPECT_EQ(brig_test_le_parse_c(data.data(), cut, &n, bytes, &u, &i, &b), -1) << cut;
  }
  EXPECT_EQ(brig_test_le_parse_c((data + "!").data(), data.size() + 1, &n, bytes, &u, &i, &b), -1);

  char out[8];
  const int64_t negative = -2;
  ASSERT_EQ(brig_test_le_store_c(out, &negative, sizeof negative), 0);
  EXPECT_EQ(std::string(out, 8), std::string("\xFE\xFF\xFF\xFF\xFF\xFF\xFF\xFF"));
  const uint16_t word = 0x1234;
  ASSERT_EQ(brig_test_le_store_c(out, &word, sizeof word), 0);
  EXPECT_EQ(std::string(out, 2), "\x34\x12");
  EXPECT_EQ(brig_test_le_store_c(out, &word, 3), -1);  // not an integer width
}

}  // namespace
}  // namespace brig
