// Fuzz target: the image-cache file parser (engine/image_file.h, brig_python_image_load),
// fed the input as a whole image file. Kept thin on purpose (the format is being changed):
// the input is written to a private file (mode 0600 in a 0700 directory, so that the
// ownership checks pass) and loaded: a refusal must give its reason; an image that loads is
// cloned once and destroyed.
// So that inputs can get past the check that the file is this binary's, every "@KEY@" in
// the input is replaced by this binary's key (brig_python_image_file_key()) and every
// "@KLEN" by that key's length as a little-endian u32.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::string key = brig_python_image_file_key();
  const uint32_t klen = static_cast<uint32_t>(key.size());
  ReplaceAll(&bytes, "@KEY@", key);
  ReplaceAll(&bytes, "@KLEN", std::string(reinterpret_cast<const char*>(&klen), 4));

  const std::string path = Dir() + "/image";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  close(fd);
  const char* why = nullptr;
  brig_python_image* image = brig_python_image_load(path.c_str(), &why, nullptr);
  FUZZ_CHECK(image || why, "a file that exists was refused without a reason");
  if (image) {
    brig_python_instance* clone = brig_python_instance_clone(image, nullptr, 0);
    if (clone) brig_python_instance_destroy(clone);
    brig_python_image_destroy(image);
  }
  return 0;
}
