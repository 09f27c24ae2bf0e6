#include "store/write_lock.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace brig::store {

namespace {
// Names this layout: a file made by a brig whose mutex differs in size (or a file that is
// not ours) is refused rather than misread.
constexpr uint64_t kMagic = 0x6b636f6c67697262ull ^ sizeof(pthread_mutex_t);  // "briglock"
constexpr size_t kFileBytes = 4096;
}  // namespace

struct WriteLock::Shared {
  std::atomic<uint64_t> magic;  // kMagic once `mutex` is initialised
  pthread_mutex_t mutex;
};

StatusOr<std::unique_ptr<WriteLock>> WriteLock::Open(const std::string& path) {
  auto fail = [&](const char* what, int err) {
    return Status::Unavailable("cannot " + std::string(what) + " the store's write lock " + path + ": " + std::strerror(err));
  };
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return fail("open", errno);
  // Made and initialised by one process at a time (a short, blocking flock: nobody holds it
  // for longer than this).
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      const int err = errno;
      close(fd);
      return fail("flock", err);
    }
  }
  auto done = [&](int err, const char* what) -> Status {
    flock(fd, LOCK_UN);
    if (err == 0) return Status::Ok();
    close(fd);
    return fail(what, err);
  };
  struct stat st {};
  if (fstat(fd, &st) != 0) return done(errno, "stat");
  if (st.st_size < static_cast<off_t>(kFileBytes) && ftruncate(fd, kFileBytes) != 0) return done(errno, "size");
  void* map = mmap(nullptr, kFileBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return done(errno, "map");
  static_assert(sizeof(Shared) <= kFileBytes);
  auto* shared = static_cast<Shared*>(map);
  const uint64_t magic = shared->magic.load(std::memory_order_acquire);
  if (magic != kMagic) {
    if (magic != 0) {
      munmap(map, kFileBytes);
      return done(EINVAL, "use (it was made by another version of brig, or is not a lock file)");
    }
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    const int rc = pthread_mutex_init(&shared->mutex, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
      munmap(map, kFileBytes);
      return done(rc, "initialise");
    }
    shared->magic.store(kMagic, std::memory_order_release);
  }
  if (Status s = done(0, ""); !s.ok()) return s;
  return std::unique_ptr<WriteLock>(new WriteLock(fd, shared));
}

WriteLock::~WriteLock() {
  munmap(shared_, kFileBytes);
  close(fd_);
}

Status WriteLock::Lock(std::chrono::milliseconds timeout) {
  timespec deadline{};
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  const int64_t ns = deadline.tv_nsec + (timeout.count() % 1000) * 1'000'000;
  deadline.tv_sec += timeout.count() / 1000 + ns / 1'000'000'000;
  deadline.tv_nsec = ns % 1'000'000'000;
  while (true) {
    const int rc = pthread_mutex_clocklock(&shared_->mutex, CLOCK_MONOTONIC, &deadline);
    if (rc == 0) return Status::Ok();
    if (rc == EOWNERDEAD) {
      // Its holder died (in the middle of a write): ours now. What it left half written in
      // the database, SQLite rolls back by itself when this process begins its transaction.
      pthread_mutex_consistent(&shared_->mutex);
      return Status::Ok();
    }
    if (rc == EINTR || rc == EAGAIN) continue;
    if (rc == ETIMEDOUT) {
      return Status::Unavailable("database is locked: another process has been writing for over " +
                                 std::to_string(timeout.count()) + " ms");
    }
    return Status::Unavailable("cannot take the store's write lock: " + std::string(std::strerror(rc)));
  }
}

void WriteLock::Unlock() { pthread_mutex_unlock(&shared_->mutex); }

}  // namespace brig::store
