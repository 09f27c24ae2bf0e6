/* util/little_endian.h compiled as C, as the engine's C files use it: the functions below
 * are called by little_endian_test.cc. */
#include "util/little_endian.h"

/* Reads "u32 n | n bytes | u64 | i64 | u8" from (data, size) as image_file.c reads its trailer:
 * 0 and the fields, or -1 where a read did not fit. */
int brig_test_le_parse_c(const char* data, size_t size, uint32_t* n, char* bytes, uint64_t* u, int64_t* i,
                         uint8_t* b) {
  brig_le_reader r = {data, size};
  if (BRIG_LE_READ(&r, *n) || *n > 16 || brig_le_read_bytes(&r, bytes, *n) || BRIG_LE_READ(&r, *u) ||
      BRIG_LE_READ(&r, *i) || BRIG_LE_READ(&r, *b) || r.left != 0) {
    return -1;
  }
  return 0;
}

/* Writes v (of `size` bytes) little-endian to out, as image_file.c writes its trailer. */
int brig_test_le_store_c(char* out, const void* v, size_t size) { return brig_le_store_int(out, v, size); }
