/* Little-endian integers in byte buffers: the one reader and writer of brig's binary formats
 * (the stdlib pack, image files, page snapshots, stored session state), for C and C++.
 *
 * Loads and stores go through memcpy, so buffers need no alignment, and compile to a plain
 * load or store on a little-endian host (a byte swap elsewhere).
 *
 * brig_le_reader is a cursor over untrusted bytes: each read checks what is left first; a
 * read that does not fit returns -1 (C) or false (C++) and neither reads nor moves.
 *
 * Thread-safety: plain functions over memory the caller owns; a reader is used by one
 * thread at a time. Lifetime: a reader points into its buffer, which must outlive it. */
#ifndef BRIG_UTIL_LITTLE_ENDIAN_H_
#define BRIG_UTIL_LITTLE_ENDIAN_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define BRIG_LE16(v) __builtin_bswap16(v)
#define BRIG_LE32(v) __builtin_bswap32(v)
#define BRIG_LE64(v) __builtin_bswap64(v)
#else
#define BRIG_LE16(v) (v)
#define BRIG_LE32(v) (v)
#define BRIG_LE64(v) (v)
#endif

/* The little-endian integer at p. */
static inline uint16_t brig_le_load16(const void* p) {
  uint16_t v;
  memcpy(&v, p, sizeof v);
  return BRIG_LE16(v);
}
static inline uint32_t brig_le_load32(const void* p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return BRIG_LE32(v);
}
static inline uint64_t brig_le_load64(const void* p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return BRIG_LE64(v);
}

/* Stores v at p, little-endian. */
static inline void brig_le_store16(void* p, uint16_t v) {
  v = BRIG_LE16(v);
  memcpy(p, &v, sizeof v);
}
static inline void brig_le_store32(void* p, uint32_t v) {
  v = BRIG_LE32(v);
  memcpy(p, &v, sizeof v);
}
static inline void brig_le_store64(void* p, uint64_t v) {
  v = BRIG_LE64(v);
  memcpy(p, &v, sizeof v);
}

/* Converts the host integer at `value`, of `size` bytes (1, 2, 4 or 8; signed or unsigned),
 * to `size` little-endian bytes at `out`. -1 (nothing written) for another size. */
static inline int brig_le_store_int(void* out, const void* value, size_t size) {
  switch (size) {
    case 1: memcpy(out, value, 1); return 0;
    case 2: { uint16_t v; memcpy(&v, value, 2); brig_le_store16(out, v); return 0; }
    case 4: { uint32_t v; memcpy(&v, value, 4); brig_le_store32(out, v); return 0; }
    case 8: { uint64_t v; memcpy(&v, value, 8); brig_le_store64(out, v); return 0; }
    default: return -1;
  }
}

typedef struct {
  const char* p; /* the next byte */
  size_t left;   /* bytes from p to the end */
} brig_le_reader;

/* Copies the next n bytes to out and moves past them. 0, or -1 if fewer are left. */
static inline int brig_le_read_bytes(brig_le_reader* r, void* out, size_t n) {
  if (r->left < n) return -1;
  if (n) memcpy(out, r->p, n);
  r->p += n;
  r->left -= n;
  return 0;
}

/* Points *out at the next n bytes (no copy) and moves past them. 0, or -1 if fewer are left. */
static inline int brig_le_skip(brig_le_reader* r, size_t n, const char** out) {
  if (r->left < n) return -1;
  if (out) *out = r->p;
  r->p += n;
  r->left -= n;
  return 0;
}

/* Reads a little-endian integer of `size` bytes (1, 2, 4 or 8) into the host integer at
 * `out`, which has that size (signed or unsigned). 0, or -1 if fewer bytes are left or the
 * size is another. BRIG_LE_READ(r, v) reads into the variable v, by its size. */
static inline int brig_le_read_int(brig_le_reader* r, void* out, size_t size) {
  const char* at;
  if ((size != 1 && size != 2 && size != 4 && size != 8) || brig_le_skip(r, size, &at) != 0) return -1;
  switch (size) {
    case 1: memcpy(out, at, 1); break;
    case 2: { uint16_t v = brig_le_load16(at); memcpy(out, &v, 2); break; }
    case 4: { uint32_t v = brig_le_load32(at); memcpy(out, &v, 4); break; }
    default: { uint64_t v = brig_le_load64(at); memcpy(out, &v, 8); break; }
  }
  return 0;
}
#define BRIG_LE_READ(r, v) brig_le_read_int((r), &(v), sizeof(v))

#ifdef __cplusplus
#include <string>
#include <string_view>

namespace brig {

// The C++ face of brig_le_reader: reads integers and byte runs off the front of `bytes`.
class LeReader {
 public:
  explicit LeReader(std::string_view bytes) : r_{bytes.data(), bytes.size()} {}

  [[nodiscard]] bool U8(uint8_t* v) { return brig_le_read_int(&r_, v, 1) == 0; }
  [[nodiscard]] bool U16(uint16_t* v) { return brig_le_read_int(&r_, v, 2) == 0; }
  [[nodiscard]] bool U32(uint32_t* v) { return brig_le_read_int(&r_, v, 4) == 0; }
  [[nodiscard]] bool U64(uint64_t* v) { return brig_le_read_int(&r_, v, 8) == 0; }
  // The next n bytes, not copied: *out points into the reader's buffer.
  [[nodiscard]] bool Bytes(uint64_t n, std::string_view* out) {
    const char* at;
    if (n > r_.left || brig_le_skip(&r_, static_cast<size_t>(n), &at) != 0) return false;
    *out = std::string_view(at, static_cast<size_t>(n));
    return true;
  }
  size_t remaining() const { return r_.left; }
  // What is left, not copied.
  std::string_view rest() const { return std::string_view(r_.p, r_.left); }

 private:
  brig_le_reader r_;
};

// Appends v to *out as little-endian bytes.
inline void AppendLe32(std::string* out, uint32_t v) {
  char b[4];
  brig_le_store32(b, v);
  out->append(b, sizeof b);
}
inline void AppendLe64(std::string* out, uint64_t v) {
  char b[8];
  brig_le_store64(b, v);
  out->append(b, sizeof b);
}

}  // namespace brig
#endif

#endif /* BRIG_UTIL_LITTLE_ENDIAN_H_ */
