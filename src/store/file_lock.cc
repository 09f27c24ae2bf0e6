#include "store/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace brig::store {
namespace {

class FileSessionLock final : public SessionLock {
 public:
  explicit FileSessionLock(int fd) : fd_(fd) {}
  ~FileSessionLock() override {
    flock(fd_, LOCK_UN);
    close(fd_);
  }

 private:
  const int fd_;  // open and locked for the object's lifetime
};

}  // namespace

StatusOr<std::unique_ptr<SessionLock>> LockFile(const std::string& path,
                                                std::chrono::milliseconds timeout) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::Unavailable("cannot open session lock file " + path + ": " + std::strerror(errno));
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(200);
  // Polling with LOCK_NB rather than a blocking flock: a blocking call cannot time out.
  while (true) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return std::unique_ptr<SessionLock>(new FileSessionLock(fd));
    if (errno != EWOULDBLOCK && errno != EINTR) {
      const int err = errno;
      close(fd);
      return Status::Unavailable("cannot lock " + path + ": " + std::strerror(err));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      close(fd);
      return Status::DeadlineExceeded("session is locked by another execution (waited " +
                                      std::to_string(timeout.count()) + " ms)");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(20'000));
  }
}

}  // namespace brig::store
