#include "store/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace brig::store {
namespace {

// The lock files held by this process, by path. A waiter in this process waits here and is
// woken when the holder releases, instead of polling flock (whose backoff reaches 20 ms: two
// executions of one session in one worker would start up to that long apart). flock still
// decides between processes.
//
// Released lock files stay open (up to kMaxIdleFiles), so that the next execution of the
// session locks without an open and a close (~7 µs per durable execution). The files are
// never removed (file_lock.h), so a kept descriptor names the inode every process locks.
constexpr size_t kMaxIdleFiles = 1024;
struct LocalHolders {
  std::mutex mu;
  std::condition_variable released;
  std::unordered_set<std::string> held;           // GUARDED_BY(mu)
  std::unordered_map<std::string, int> idle_fds;  // GUARDED_BY(mu): open, not locked, not held
};
LocalHolders& Local() {
  static LocalHolders* local = new LocalHolders;  // never destroyed: a lock may outlive exit's destructors
  return *local;
}
// Gives up this process's hold on `path`; `fd` (open, unlocked; -1 for none) is kept for
// the next holder, or closed when enough are kept.
void ReleaseLocal(const std::string& path, int fd = -1) {
  LocalHolders& l = Local();
  {
    std::lock_guard<std::mutex> lock(l.mu);
    l.held.erase(path);
    if (fd >= 0 && l.idle_fds.size() < kMaxIdleFiles && l.idle_fds.emplace(path, fd).second) fd = -1;
  }
  if (fd >= 0) close(fd);
  l.released.notify_all();
}

class FileSessionLock final : public SessionLock {
 public:
  FileSessionLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~FileSessionLock() override {
    flock(fd_, LOCK_UN);
    ReleaseLocal(path_, fd_);
  }

 private:
  const int fd_;  // open and locked for the object's lifetime
  const std::string path_;
};

}  // namespace

StatusOr<std::unique_ptr<SessionLock>> LockFile(const std::string& path,
                                                std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto locked_out = [&] {
    return Status::DeadlineExceeded("session is locked by another execution (waited " + std::to_string(timeout.count()) +
                                    " ms)");
  };
  int fd = -1;
  {
    LocalHolders& l = Local();
    std::unique_lock<std::mutex> lock(l.mu);
    if (!l.released.wait_until(lock, deadline, [&] { return l.held.count(path) == 0; })) return locked_out();
    l.held.insert(path);
    if (auto idle = l.idle_fds.find(path); idle != l.idle_fds.end()) {
      fd = idle->second;
      l.idle_fds.erase(idle);
    }
  }
  if (fd < 0) fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    ReleaseLocal(path);
    return Status::Unavailable("cannot open session lock file " + path + ": " + std::strerror(err));
  }
  auto pause = std::chrono::microseconds(200);
  // Polling with LOCK_NB rather than a blocking flock: a blocking call cannot time out.
  while (true) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return std::unique_ptr<SessionLock>(new FileSessionLock(fd, path));
    if (errno != EWOULDBLOCK && errno != EINTR) {
      const int err = errno;
      close(fd);
      ReleaseLocal(path);
      return Status::Unavailable("cannot lock " + path + ": " + std::strerror(err));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      close(fd);
      ReleaseLocal(path);
      return locked_out();
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(20'000));
  }
}

}  // namespace brig::store
