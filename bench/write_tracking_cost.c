/* Would tracking writes make a durable save's page diff cheaper? (issue #10)
 *
 * A save now finds its candidate pages with PAGEMAP_SCAN (every private page of the instance,
 * i.e. written since the clone) and compares each with the image (src/engine/page_snapshot.c,
 * src/sandbox/sandbox_state.cc): a small session has ~250 candidates, ~200 differ, but only
 * ~70 changed since its previous save. The kernel can report "written since the last scan"
 * instead: register the memory with userfaultfd in asynchronous write-protect mode
 * (UFFD_FEATURE_WP_ASYNC, Linux >= 6.7) and scan with PM_SCAN_WP_MATCHING, which write-protects
 * again what it reports. The price: the first write to each page after a save takes a
 * write-protect fault (resolved in the kernel, but a fault all the same).
 *
 * This models one small session per round: a MAP_PRIVATE view of a memfd "image" of IMAGE_MB
 * (populated read-only, as a clone's warm pages are), CANDIDATES pages made private once, then
 * per round CHANGED of them written (an execution) and the changes found (a save):
 *   current   PAGEMAP_SCAN for present private pages + memcmp of every candidate with the image
 *   tracked   the same writes paying their write-protect faults + PAGEMAP_SCAN with
 *             PM_SCAN_WP_MATCHING + memcmp of the written pages only
 * and prints the medians (microseconds per round, writes included in both) and their ratio.
 * Needs userfaultfd (root, or vm.unprivileged_userfaultfd=1) and Linux >= 6.7.
 * Not built by CMake: gcc -O2 -o /tmp/write_tracking_cost bench/write_tracking_cost.c
 * Usage: write_tracking_cost [IMAGE_MB=24] [CANDIDATES=250] [CHANGED=70] [ROUNDS=50] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Debian 12's headers predate PAGEMAP_SCAN and the asynchronous write protection. */
struct page_region {
  uint64_t start, end, categories;
};
struct pm_scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted, category_mask,
      category_anyof_mask, return_mask;
};
#define SCAN _IOWR('f', 16, struct pm_scan_arg)
#define IS_WRITTEN (1 << 1)
#define IS_FILE (1 << 2)
#define IS_PRESENT (1 << 3)
#define IS_PFNZERO (1 << 5)
#define WP_MATCHING (1 << 0)
#define CHECK_WPASYNC (1 << 1)
#define FEATURE_WP_UNPOPULATED (1 << 13)
#define FEATURE_WP_ASYNC (1 << 15)

#define PG 4096u

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double median(double* v, int n) {
  qsort(v, n, sizeof *v, cmp_double);
  return v[n / 2];
}

static struct page_region regions[4096];

/* Pages PAGEMAP_SCAN reports in [m, m + bytes) with `flags` and the category filters. */
static long scan(int pagemap, uint8_t* m, size_t bytes, uint64_t flags, uint64_t anyof, uint64_t none,
                 uint64_t want, long* pages) {
  struct pm_scan_arg a = {.size = sizeof a, .flags = flags, .start = (uintptr_t)m, .end = (uintptr_t)m + bytes,
                          .vec = (uintptr_t)regions, .vec_len = 4096, .category_inverted = none,
                          .category_mask = none | want, .category_anyof_mask = anyof, .return_mask = anyof | want};
  long n = ioctl(pagemap, SCAN, &a);
  *pages = 0;
  for (long i = 0; i < n; i++) *pages += (long)((regions[i].end - regions[i].start) / PG);
  return n;
}

/* memcmp of every reported page with the image (what a save compares). */
static int compare_reported(long n, const uint8_t* m, const uint8_t* image) {
  int differ = 0;
  for (long i = 0; i < n; i++) {
    for (uint64_t a = regions[i].start; a < regions[i].end; a += PG) {
      size_t off = (size_t)(a - (uintptr_t)m);
      differ += memcmp(m + off, image + off, PG) != 0;
    }
  }
  return differ;
}

int main(int argc, char** argv) {
  size_t image_mb = argc > 1 ? strtoul(argv[1], 0, 10) : 24;
  int candidates = argc > 2 ? atoi(argv[2]) : 250;
  int changed = argc > 3 ? atoi(argv[3]) : 70;
  int rounds = argc > 4 ? atoi(argv[4]) : 50;
  size_t pages = image_mb * 256, bytes = pages * PG;
  if (candidates < changed || (size_t)candidates * 7 >= pages || rounds < 1) {
    fprintf(stderr, "need CHANGED <= CANDIDATES, CANDIDATES * 7 < pages, ROUNDS >= 1\n");
    return 2;
  }
  int fd = memfd_create("image", 0);
  if (fd < 0 || ftruncate(fd, (off_t)bytes) != 0) return perror("memfd"), 1;
  uint8_t* image = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  for (size_t i = 0; i < bytes; i += 8) *(uint64_t*)(image + i) = i * 0x9e3779b97f4a7c15ull;
  int pagemap = open("/proc/self/pagemap", O_RDONLY);
  if (pagemap < 0) return perror("pagemap"), 1;

  double* current = calloc(rounds, sizeof(double));
  double* tracked = calloc(rounds, sizeof(double));
  double* faults = calloc(rounds, sizeof(double));
  uint8_t* views[2];
  for (int v = 0; v < 2; v++) {
    views[v] = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    madvise(views[v], bytes, MADV_POPULATE_READ);
    for (int c = 0; c < candidates; c++) views[v][(size_t)c * 7 * PG] ^= 1; /* the clone's private pages */
  }
  /* views[1] tracked: registered, then one scan to write-protect what it has. */
  int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  struct uffdio_api api = {.api = UFFD_API, .features = FEATURE_WP_ASYNC | FEATURE_WP_UNPOPULATED};
  struct uffdio_register reg = {.range = {(uintptr_t)views[1], bytes}, .mode = UFFDIO_REGISTER_MODE_WP};
  if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) != 0 || ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
    perror("userfaultfd (asynchronous write protection)");
    return 1;
  }
  long reported = 0, n;
  scan(pagemap, views[1], bytes, WP_MATCHING | CHECK_WPASYNC, 0, 0, IS_WRITTEN, &reported);

  int differ_current = 0, differ_tracked = 0;
  long reported_current = 0, reported_tracked = 0;
  for (int r = 0; r < rounds; r++) {
    for (int v = 0; v < 2; v++) {
      uint8_t* m = views[v];
      double t0 = now_us();
      for (int c = 0; c < changed; c++) m[(size_t)((c + r) % candidates) * 7 * PG + 64 + r % 64] ^= 0x5a;
      double t1 = now_us();
      if (v == 0) {
        n = scan(pagemap, m, bytes, 0, IS_PRESENT, IS_FILE | IS_PFNZERO, 0, &reported_current);
        differ_current = compare_reported(n, m, image);
        current[r] = now_us() - t0;
      } else {
        n = scan(pagemap, m, bytes, WP_MATCHING | CHECK_WPASYNC, 0, 0, IS_WRITTEN, &reported_tracked);
        differ_tracked = compare_reported(n, m, image);
        tracked[r] = now_us() - t0;
        faults[r] = t1 - t0;
      }
      if (n < 0) return perror("PAGEMAP_SCAN"), 1;
    }
  }
  double c = median(current, rounds), t = median(tracked, rounds), f = median(faults, rounds);
  printf("image %zu MiB, %d candidate pages, %d written per round, %d rounds (medians)\n", image_mb, candidates,
         changed, rounds);
  printf("  current: %8.1f us per round (scan reports %ld pages, %d differ from the image)\n", c, reported_current,
         differ_current);
  printf("  tracked: %8.1f us per round (scan reports %ld pages, %d differ), of which the writes' faults %.1f us"
         " (%.2f us per page)\n",
         t, reported_tracked, differ_tracked, f, f / changed);
  printf("  tracked / current: %.2fx\n", t / c);
  return 0;
}
