/* What hashing an image file's memory costs, and how much of it is the hash: reads the data
 * pages of a cached image (brig's image cache file; its trailer gives the memory size) in four
 * ways (mmap faulting pages in, mmap + MADV_POPULATE_READ per data extent, mmap with
 * MAP_POPULATE, pread into a 64 KiB buffer), each with three per-page functions: the digest's
 * hash (src/engine/page_snapshot.c's hash_page), a plain sum of the words (the floor: memory
 * traffic only) and an AVX2 xxh3-style multiply-accumulate. Prints the best and mean of REPS.
 * Not built by CMake: gcc -O2 -o /tmp/image_read_cost bench/image_read_cost.c
 * Usage: image_read_cost IMAGE_FILE REPS   (bench/RESULTS.md, 2026-12-04 "verification record") */
#define _GNU_SOURCE
#include <fcntl.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define PG 4096u
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}
static uint64_t hash_page(uint64_t seed, const uint8_t* page) {
  uint64_t a = seed, b = ~seed, c = seed * 3, d = seed ^ 0x5bd1e995u;
  const uint64_t* w = (const uint64_t*)page;
  for (unsigned i = 0; i < PG / 8; i += 4) {
    a = (a ^ w[i]) * 0x9e3779b97f4a7c15ull;
    b = (b ^ w[i + 1]) * 0xc2b2ae3d27d4eb4full;
    c = (c ^ w[i + 2]) * 0x165667b19e3779f9ull;
    d = (d ^ w[i + 3]) * 0x27d4eb2f165667c5ull;
  }
  return mix(mix(mix(mix(seed, a), b), c), d);
}
static uint64_t sum_page(uint64_t seed, const uint8_t* page) {
  const uint64_t* w = (const uint64_t*)page;
  uint64_t a = seed, b = 0, c = 0, d = 0;
  for (unsigned i = 0; i < PG / 8; i += 4) {
    a += w[i];
    b += w[i + 1];
    c += w[i + 2];
    d += w[i + 3];
  }
  return a ^ b ^ c ^ d;
}
__attribute__((target("avx2"))) static uint64_t avx_page(uint64_t seed, const uint8_t* page) {
  /* xxh3-style accumulate: acc += (d^k).lo32 * (d^k).hi32 ; acc += swap(d) */
  __m256i acc0 = _mm256_set1_epi64x(seed), acc1 = _mm256_set1_epi64x(~seed);
  const __m256i k0 = _mm256_set_epi64x(0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full, 0x165667b19e3779f9ull,
                                       0x27d4eb2f165667c5ull);
  const __m256i k1 = _mm256_set_epi64x(0x85ebca77c2b2ae63ull, 0x94d049bb133111ebull, 0xbf58476d1ce4e5b9ull,
                                       0xd6e8feb86659fd93ull);
  for (unsigned i = 0; i < PG; i += 64) {
    __m256i d0 = _mm256_loadu_si256((const __m256i*)(page + i)),
            d1 = _mm256_loadu_si256((const __m256i*)(page + i + 32));
    __m256i x0 = _mm256_xor_si256(d0, k0), x1 = _mm256_xor_si256(d1, k1);
    acc0 = _mm256_add_epi64(acc0, _mm256_mul_epu32(x0, _mm256_srli_epi64(x0, 32)));
    acc1 = _mm256_add_epi64(acc1, _mm256_mul_epu32(x1, _mm256_srli_epi64(x1, 32)));
    acc0 = _mm256_add_epi64(acc0, _mm256_shuffle_epi32(d0, 0x4e));
    acc1 = _mm256_add_epi64(acc1, _mm256_shuffle_epi32(d1, 0x4e));
  }
  uint64_t o[8];
  _mm256_storeu_si256((__m256i*)o, acc0);
  _mm256_storeu_si256((__m256i*)(o + 4), acc1);
  uint64_t h = seed;
  for (int i = 0; i < 8; i++) h = mix(h, o[i]);
  return h;
}
typedef uint64_t (*hf)(uint64_t, const uint8_t*);
int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: image_read_cost IMAGE_FILE REPS\n");
    return 2;
  }
  int fd = open(argv[1], O_RDONLY);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  struct stat st;
  fstat(fd, &st);
  uint64_t tail[2];
  pread(fd, tail, 16, st.st_size - 16);
  size_t mem = tail[0];
  const char* names[] = {"digest-hash", "sum", "avx2-xxh3-like"};
  hf fs[] = {hash_page, sum_page, avx_page};
  int reps = atoi(argv[2]);
  for (int mode = 0; mode < 4; mode++)
    for (int f = 0; f < 3; f++) {
      double best = 1e9, tot = 0;
      uint64_t hh = 0;
      for (int r = 0; r < reps; r++) {
        double t0 = now();
        uint64_t h = 1;
        if (mode < 3) {
          uint8_t* m = mmap(NULL, mem, PROT_READ, MAP_SHARED | (mode == 2 ? MAP_POPULATE : 0), fd, 0);
          off_t at = 0;
          while (at < (off_t)mem) {
            off_t d = lseek(fd, at, SEEK_DATA);
            if (d < 0) break;
            off_t ho = lseek(fd, d, SEEK_HOLE);
            if (ho > (off_t)mem) ho = mem;
            if (mode == 1) madvise(m + d, ho - d, MADV_POPULATE_READ);
            for (off_t p = d; p < ho; p += PG) h = fs[f](mix(h, p), m + p);
            at = ho;
          }
          munmap(m, mem);
        } else {
          static uint8_t buf[1 << 16] __attribute__((aligned(64)));
          off_t at = 0;
          while (at < (off_t)mem) {
            off_t d = lseek(fd, at, SEEK_DATA);
            if (d < 0) break;
            off_t ho = lseek(fd, d, SEEK_HOLE);
            if (ho > (off_t)mem) ho = mem;
            for (off_t p = d; p < ho; p += sizeof buf) {
              size_t n = ho - p < (off_t)sizeof buf ? ho - p : sizeof buf;
              pread(fd, buf, n, p);
              for (size_t q = 0; q < n; q += PG) h = fs[f](mix(h, p + q), buf + q);
            }
            at = ho;
          }
        }
        double t = now() - t0;
        if (t < best) best = t;
        tot += t;
        hh = h;
      }
      printf("mode %s %-12s best %.3f ms mean %.3f ms (result %016llx)\n",
             mode == 0   ? "mmap-fault"
             : mode == 1 ? "mmap-popread"
             : mode == 2 ? "mmap-populate"
                         : "pread64k",
             names[f], best, tot / reps, (unsigned long long)hh);
    }
}
