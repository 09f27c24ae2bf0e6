#include "sandbox/image_cache.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "engine/image_file.h"

namespace brig::image_cache {
namespace {

bool Debug() { return std::getenv("BRIG_DEBUG_IMAGE") != nullptr; }

std::string Directory() {
  if (const char* dir = std::getenv("BRIG_IMAGE_CACHE")) {
    return std::strcmp(dir, "off") == 0 ? std::string() : std::string(dir);
  }
  if (const char* home = std::getenv("BRIG_HOME"); home && *home) return std::string(home) + "/images";
  const char* user_home = std::getenv("HOME");
  if (!user_home || !*user_home) return {};
  return std::string(user_home) + "/.local/share/brig/images";
}

// mkdir -p with private permissions for what it creates.
bool MakeDirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); i++) {
    if (i < dir.size() && dir[i] != '/') continue;
    if (mkdir(dir.substr(0, i).c_str(), 0700) != 0 && errno != EEXIST) return false;
  }
  return true;
}

// Each build of brig (and each test binary) saves its own file: keep the most recently
// written few, so that old builds do not pile up.
constexpr size_t kKeepFiles = 8;

void Prune(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  std::vector<std::pair<long long, std::string>> images;  // (mtime, path)
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".img") != 0) continue;
    struct stat st;
    std::string path = dir + "/" + name;
    if (stat(path.c_str(), &st) == 0) images.emplace_back(static_cast<long long>(st.st_mtime), path);
  }
  closedir(d);
  if (images.size() <= kKeepFiles) return;
  std::sort(images.begin(), images.end(), std::greater<>());
  for (size_t i = kKeepFiles; i < images.size(); i++) unlink(images[i].second.c_str());
}

}  // namespace

std::string Path() {
  std::string dir = Directory();
  const char* key = brig_python_image_file_key();
  if (dir.empty() || !*key) return {};
  return dir + "/" + key + ".img";
}

brig_python_image* Load() {
  std::string path = Path();
  if (path.empty()) return nullptr;
  brig_python_image* image = brig_python_image_load(path.c_str());
  if (Debug()) {
    std::fprintf(stderr, "brig: image cache %s: %s\n", path.c_str(), image ? "loaded" : std::strerror(errno));
  }
  return image;
}

void Save(const brig_python_image* image) {
  std::string path = Path();
  if (path.empty()) return;
  std::string dir = path.substr(0, path.rfind('/'));
  bool saved = MakeDirs(dir) && brig_python_image_save(image, path.c_str()) == 0;
  if (saved) Prune(dir);
  if (Debug()) std::fprintf(stderr, "brig: image cache %s: %s\n", path.c_str(), saved ? "saved" : std::strerror(errno));
}

}  // namespace brig::image_cache
