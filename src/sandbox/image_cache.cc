#include "sandbox/image_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <utility>
#include <vector>

#include "engine/image_file.h"

namespace brig::image_cache {
namespace {

bool Debug() { return std::getenv("BRIG_DEBUG_IMAGE") != nullptr; }

void Warn(const std::string& what) { std::fprintf(stderr, "brig: warning: %s\n", what.c_str()); }

// The cache directory and the directory brig owns there (empty dir: the cache is off).
struct Location {
  std::string dir, root;
};

Location Where() {
  if (const char* dir = std::getenv("BRIG_IMAGE_CACHE")) {
    if (std::strcmp(dir, "off") == 0 || !*dir) return {};
    return {dir, dir};
  }
  if (const char* home = std::getenv("BRIG_HOME"); home && *home) return {std::string(home) + "/images", home};
  const char* user_home = std::getenv("HOME");
  if (!user_home || !*user_home) return {};
  std::string root = std::string(user_home) + "/.local/share/brig";
  return {root + "/images", root};
}

// An image made with a given seed (the nodes' shared one on PostgreSQL) has a file of its
// own, so that it never replaces the one that processes without a seed load (SQLite): a
// worker started after such a replacement had another image than its siblings, and could not
// restore the pages they saved.
std::string FileIn(const std::string& dir, std::optional<uint64_t> seed = std::nullopt) {
  const char* key = brig_python_image_file_key();
  if (dir.empty() || !*key) return {};
  if (!seed) return dir + "/" + key + ".img";
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(*seed));
  return dir + "/" + key + "-seed-" + hex + ".img";
}

// mkdir -p with private permissions for what it creates.
bool MakeDirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); i++) {
    if (i < dir.size() && dir[i] != '/') continue;
    if (mkdir(dir.substr(0, i).c_str(), 0700) != 0 && errno != EEXIST) return false;
  }
  return true;
}

std::string Parent(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

// Why the directory (or symbolic link) at `path`, with `st` its lstat, lets someone else than
// this user change what is under it; empty if nobody can. `strict`: it must be ours; else it
// may be root's, and writable by others if sticky (they cannot then rename what is ours).
std::string Unsafe(const std::string& path, const struct stat& st, bool strict) {
  uid_t me = geteuid();
  if (S_ISLNK(st.st_mode)) {
    return st.st_uid == me || st.st_uid == 0 ? "" : "symbolic link " + path + " belongs to another user";
  }
  if (!S_ISDIR(st.st_mode)) return path + " is not a directory";
  if (st.st_uid != me && (strict || st.st_uid != 0)) return "directory " + path + " belongs to another user";
  if ((st.st_mode & 022) && (strict || !(st.st_mode & S_ISVTX))) {
    return "directory " + path + " is writable by its group or others";
  }
  return "";
}

// Each build of brig (and each test binary) saves its own file: keep the most recently
// written few, so that old builds do not pile up.
constexpr size_t kKeepFiles = 8;

// An image's verification record, "<image>.verified" (engine/image_file.h), goes with it.
const std::string kRecordSuffix = ".verified";

bool EndsWith(const std::string& s, const std::string& end) {
  return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
}

// Removes the image file at `path` unless a process holds it: one that loaded it maps it (and
// holds a shared lock, engine/image_file.c), one that made and saved it holds it (Pin). Its
// sessions' page snapshots name that image: removed, a process started after (a worker that
// replaced a crashed one) would make a new image, and restore them only from their portable
// snapshots, which may be versions older, or not at all before one is written. Removed under
// an exclusive lock, if it is still the file at `path`: a process that opened it meanwhile
// finds it gone once it has its lock.
void RemoveUnlessInUse(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);  // a FIFO: no wait
  if (fd < 0) return;
  struct stat held, named;
  if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &held) == 0 && lstat(path.c_str(), &named) == 0 &&
      held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
    unlink(path.c_str());
  }
  close(fd);  // releases the lock
}

// The files this process holds for others (Hold), least recently named first, each with the
// descriptor whose shared lock holds it; and the one its own image came from.
struct HeldImage {
  std::string path;
  int fd;
};
constexpr size_t kMaxHeld = 8;
std::mutex held_mu;
std::vector<HeldImage> held;  // GUARDED_BY(held_mu)
std::string held_file;        // GUARDED_BY(held_mu)

// Holds the image file at `path`, as a process that loads one does (RemoveUnlessInUse): a
// shared lock on it, through the descriptor returned (-1 if not held), which the caller keeps
// open for as long as it holds the file. With `wait` false, a file being removed (locked) is
// not held.
int Pin(const std::string& path, bool wait) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);  // a FIFO: no wait
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || flock(fd, wait ? LOCK_SH : LOCK_SH | LOCK_NB) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void Prune(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  std::vector<std::pair<long long, std::string>> images;  // (mtime, path)
  std::vector<std::string> records;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    std::string path = dir + "/" + name;
    if (EndsWith(name, ".img" + kRecordSuffix)) records.push_back(path);
    if (!EndsWith(name, ".img")) continue;
    struct stat st;
    if (stat(path.c_str(), &st) == 0) images.emplace_back(static_cast<long long>(st.st_mtime), path);
  }
  closedir(d);
  if (images.size() > kKeepFiles) {
    std::sort(images.begin(), images.end(), std::greater<>());
    for (size_t i = kKeepFiles; i < images.size(); i++) RemoveUnlessInUse(images[i].second);
  }
  for (const std::string& record : records) {  // those of images removed here or before
    std::string image = record.substr(0, record.size() - kRecordSuffix.size());
    if (access(image.c_str(), F_OK) != 0 && errno == ENOENT) unlink(record.c_str());
  }
}

// An exclusive lock on the cache directory while this process makes the image, so that
// processes starting together make it once. Waits at most kLockWait for another process
// (making an image takes well under a second), then goes on without.
class MakingLock {
 public:
  explicit MakingLock(const std::string& dir) : fd_(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    if (fd_ < 0) return;
    const timespec pause = {0, 5'000'000};
    for (int waited_ms = 0; flock(fd_, LOCK_EX | LOCK_NB) != 0; waited_ms += 5) {
      if ((errno != EWOULDBLOCK && errno != EINTR) || waited_ms >= kLockWaitMs) {
        close(fd_);
        fd_ = -1;
        return;
      }
      nanosleep(&pause, nullptr);
    }
  }
  ~MakingLock() {
    if (fd_ >= 0) close(fd_);  // releases the lock
  }
  MakingLock(const MakingLock&) = delete;
  MakingLock& operator=(const MakingLock&) = delete;

 private:
  static constexpr int kLockWaitMs = 20'000;
  int fd_;
};

// The image in `path`, or null; a file there that is refused is reported (one line). An
// image made with another seed than `seed` (when given) is not used, silently (expected
// once per cache when the nodes on a PostgreSQL store first share a seed).
brig_python_image* LoadFile(const std::string& path, std::optional<uint64_t> seed, bool* refused) {
  const char* why = nullptr;
  brig_image_check how = BRIG_IMAGE_CHECK_HASHED;
  brig_python_image* image = brig_python_image_load(path.c_str(), &why, &how);
  *refused = !image && why;
  if (*refused) Warn("cached image " + path + " ignored (" + why + "); making a new one");
  if (image && seed && brig_python_image_random_seed(image) != *seed) {
    if (Debug()) std::fprintf(stderr, "brig: image cache %s: made with another seed; making a new one\n", path.c_str());
    brig_python_image_destroy(image);
    return nullptr;  // not refused: a process making the one with `seed` may save it meanwhile
  }
  if (image && Debug()) {
    const char* checked = how == BRIG_IMAGE_CHECK_RECORDED             ? "memory verified by an earlier process"
                          : how == BRIG_IMAGE_CHECK_HASHED_AND_RECORDED ? "memory hashed, verification recorded"
                                                                        : "memory hashed";
    std::fprintf(stderr, "brig: image cache %s: loaded (%s)\n", path.c_str(), checked);
  }
  return image;
}

}  // namespace

std::string Path() { return FileIn(Where().dir); }

std::string HeldFile() {
  std::lock_guard<std::mutex> lock(held_mu);
  return held_file;
}

bool Hold(const std::string& path) {
  const std::string dir = Where().dir;
  if (dir.empty() || path.size() <= dir.size() + 1 || path.compare(0, dir.size(), dir) != 0 ||
      path[dir.size()] != '/') {
    return false;
  }
  const std::string name = path.substr(dir.size() + 1);
  if (name[0] == '.' || name.find('/') != std::string::npos || !EndsWith(name, ".img")) return false;
  std::lock_guard<std::mutex> lock(held_mu);
  if (path == held_file) return true;
  auto it = std::find_if(held.begin(), held.end(), [&](const HeldImage& h) { return h.path == path; });
  if (it != held.end()) {
    std::rotate(it, it + 1, held.end());  // named again: the most recent
    return true;
  }
  const int fd = Pin(path, /*wait=*/false);
  if (fd < 0) return false;
  // Only the newest few: the workers' image is the one named last; an older one is either
  // unused (the cache may prune it) or held by the processes that map it.
  if (held.size() >= kMaxHeld) {
    close(held.front().fd);
    held.erase(held.begin());
  }
  held.push_back({path, fd});
  return true;
}

std::string UnsafeDirectory(const std::string& dir, const std::string& root) {
  // The path as written: a directory or link on it that someone else controls could be
  // swapped for another.
  std::string path = dir;
  if (path.empty() || path[0] != '/') {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return "the current directory cannot be read";
    path = std::string(cwd) + "/" + path;
  }
  for (size_t i = 1; i <= path.size(); i++) {
    if (i < path.size() && path[i] != '/') continue;
    std::string prefix = path.substr(0, i);
    struct stat st;
    if (lstat(prefix.c_str(), &st) != 0) return prefix + ": " + std::strerror(errno);
    if (std::string why = Unsafe(prefix, st, /*strict=*/false); !why.empty()) return why;
  }
  // The directories it really is: brig's own (up to `root`) strictly, the rest as above.
  char real_dir[PATH_MAX], real_root[PATH_MAX];
  if (!realpath(dir.c_str(), real_dir) || !realpath(root.c_str(), real_root)) {
    return dir + ": " + std::strerror(errno);
  }
  std::string owned = real_root;
  for (std::string d = real_dir;; d = Parent(d)) {
    struct stat st;
    if (lstat(d.c_str(), &st) != 0) return d + ": " + std::strerror(errno);
    bool strict = d == owned || (d.size() > owned.size() && d.compare(0, owned.size(), owned) == 0 &&
                                 (owned == "/" || d[owned.size()] == '/'));
    if (std::string why = Unsafe(d, st, strict); !why.empty()) return why;
    if (d == "/") break;
  }
  return "";
}

brig_python_image* LoadOrMake(std::optional<uint64_t> seed, const MakeFn& make) {
  bool save = false;
  Location where = Where();
  std::string path = FileIn(where.dir, seed);
  if (path.empty()) return make(&save);
  if (!MakeDirs(where.dir)) {  // e.g. a read-only home: no cache, nothing to warn about
    if (Debug()) std::fprintf(stderr, "brig: image cache %s: %s\n", where.dir.c_str(), std::strerror(errno));
    return make(&save);
  }
  if (std::string unsafe = UnsafeDirectory(where.dir, where.root); !unsafe.empty()) {
    Warn("image cache " + where.dir + " not used (" + unsafe + ")");
    return make(&save);
  }
  auto held_now = [&path](brig_python_image* image) {  // loaded: brig_python_image_load holds it
    std::lock_guard<std::mutex> lock(held_mu);
    held_file = path;
    return image;
  };
  bool refused = false;
  if (brig_python_image* image = LoadFile(path, seed, &refused)) return held_now(image);
  MakingLock lock(where.dir);
  if (!refused) {  // another process may have saved it while this one waited
    if (brig_python_image* image = LoadFile(path, seed, &refused)) return held_now(image);
  }
  brig_python_image* image = make(&save);
  if (!image || !save) return image;
  bool saved = brig_python_image_save(image, path.c_str()) == 0;
  if (saved) {
    if (Pin(path, /*wait=*/true) >= 0) held_now(image);  // kept open: for the process's life
    Prune(where.dir);
  }
  if (Debug()) std::fprintf(stderr, "brig: image cache %s: %s\n", path.c_str(), saved ? "saved" : std::strerror(errno));
  return image;
}

}  // namespace brig::image_cache
