// Fuzz target: the image-cache file parser (engine/image_file.h, brig_python_image_load),
// fed the input as a whole image file. Kept thin on purpose (the format is being changed):
// the input is written to a private file (mode 0600 in a 0700 directory, so that the
// ownership checks pass) and loaded: a refusal must give its reason; an image that loads is
// cloned once and destroyed.
// So that inputs can get past the checks that come before the fields, the input may hold
// placeholders, replaced in this order:
//   "@KEY@"  this binary's key (brig_python_image_file_key()), "@KLEN" its length (u32 LE),
//            so that the file passes as this binary's;
//   "@SUM"   the trailer's checksum: FNV-1a 64 (LE) of the bytes from the last "BRIGIMG3"
//            before it, so that changed fields reach the field checks;
//   "@SKIP" followed by a u32 LE n: n zero bytes, written as a hole, so that a small input
//            can stand for a file with the module's whole memory (10 MiB).
// The memory's digest is not replaced: an input that changes the memory is refused by it.
// corpus/image/brigimg3-* are made by make_image_seed.py (docs/fuzzing.md). With
// BRIG_FUZZ_TRACE=1 each input's outcome is printed ("loaded", or why it was refused).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/image_file.h"
#include "engine/python_instance.h"
#include "fuzz_vfs_check.h"

namespace {

const std::string& Dir() {
  static const std::string* dir = [] {
    const char* base = std::getenv("TMPDIR");
    if (!base || !*base) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    auto* d = new std::string(std::string(base) + "/brig-image-fuzz-XXXXXX");
    FUZZ_CHECK(mkdtemp(d->data()) != nullptr);
    FUZZ_CHECK(chmod(d->c_str(), 0700) == 0);
    std::atexit([] { (void)std::system(("rm -rf '" + *dir + "'").c_str()); });
    return d;
  }();
  return *dir;
}

void ReplaceAll(std::string* s, const std::string& from, const std::string& to) {
  for (size_t at = s->find(from); at != std::string::npos; at = s->find(from, at + to.size())) {
    s->replace(at, from.size(), to);
  }
}

// As src/engine/image_file.c's checksum.
uint64_t Fnv1a(const char* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ static_cast<uint8_t>(p[i])) * 0x100000001b3ull;
  return h;
}

void ReplaceSums(std::string* s) {
  static const std::string magic = "BRIGIMG3";
  for (size_t at = s->find("@SUM"); at != std::string::npos; at = s->find("@SUM", at + 8)) {
    size_t from = s->rfind(magic, at);
    uint64_t sum = from == std::string::npos ? 0 : Fnv1a(s->data() + from, at - from);
    s->replace(at, 4, reinterpret_cast<const char*>(&sum), 8);
  }
}

// Writes `bytes` to `fd`, each "@SKIP" + u32 n as a hole of n bytes. False if the file
// would pass kMaxFile (sparse, but its size still counts against the file system's limits).
bool WriteWithHoles(int fd, const std::string& bytes) {
  constexpr uint64_t kMaxFile = 8ull << 30;
  uint64_t off = 0;
  size_t at = 0;
  while (at < bytes.size()) {
    size_t skip = bytes.find("@SKIP", at);
    size_t end = skip == std::string::npos ? bytes.size() : skip;
    FUZZ_CHECK(pwrite(fd, bytes.data() + at, end - at, static_cast<off_t>(off)) == static_cast<ssize_t>(end - at));
    off += end - at;
    at = end;
    if (skip == std::string::npos) break;
    uint32_t n = 0;
    std::memcpy(&n, bytes.data() + skip + 5, std::min<size_t>(4, bytes.size() - skip - 5));
    at = std::min(bytes.size(), skip + 9);
    off += n;
    if (off > kMaxFile) return false;
  }
  FUZZ_CHECK(ftruncate(fd, static_cast<off_t>(off)) == 0);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::string key = brig_python_image_file_key();
  const uint32_t klen = static_cast<uint32_t>(key.size());
  ReplaceAll(&bytes, "@KEY@", key);
  ReplaceAll(&bytes, "@KLEN", std::string(reinterpret_cast<const char*>(&klen), 4));
  ReplaceSums(&bytes);

  const std::string path = Dir() + "/image";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0);
  bool written = WriteWithHoles(fd, bytes);
  close(fd);
  if (!written) return 0;
  const char* why = nullptr;
  brig_python_image* image = brig_python_image_load(path.c_str(), &why, nullptr);
  FUZZ_CHECK(image || why, "a file that exists was refused without a reason");
  if (std::getenv("BRIG_FUZZ_TRACE")) std::fprintf(stderr, "image: %s\n", image ? "loaded" : why);
  if (image) {
    brig_python_instance* clone = brig_python_instance_clone(image, nullptr, 0);
    if (clone) brig_python_instance_destroy(clone);
    brig_python_image_destroy(image);
  }
  return 0;
}
