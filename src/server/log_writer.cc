#include "server/log_writer.h"

#include <unistd.h>

#include <cerrno>
#include <utility>

namespace brig::server {

LogWriter::LogWriter(int fd, std::chrono::milliseconds max_delay, size_t max_bytes)
    : fd_(fd), max_delay_(max_delay), max_bytes_(max_bytes), flusher_([this] { Run(); }) {}

LogWriter::~LogWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  flusher_.join();
  Flush();
}

void LogWriter::Line(std::string_view line) {
  bool wake, behind;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t before = waiting_.size();
    waiting_.append(line);
    waiting_.push_back('\n');
    // The writer sleeps until there is something (start its clock), and is told when a batch
    // is full (once, as the size crosses max_bytes).
    wake = before == 0 || (before < max_bytes_ && waiting_.size() >= max_bytes_);
    behind = waiting_.size() >= kBackpressure * max_bytes_;
  }
  if (behind) {
    Flush();
  } else if (wake) {
    wake_.notify_one();
  }
}

void LogWriter::Flush() {
  // Taking write_mu_ first keeps batches in order: whoever takes the waiting lines writes
  // them before anyone can take later ones.
  std::lock_guard<std::mutex> write_lock(write_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_.swap(waiting_);  // waiting_ gets the last batch's buffer, emptied: no regrowth
  }
  if (!writing_.empty()) WriteAll(writing_);
  writing_.clear();
}

void LogWriter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (waiting_.empty()) {
      wake_.wait(lock, [&] { return stop_ || !waiting_.empty(); });
      continue;
    }
    // Lines are waiting: give later ones max_delay to join them (less if the batch fills).
    wake_.wait_for(lock, max_delay_, [&] { return stop_ || waiting_.size() >= max_bytes_; });
    lock.unlock();
    Flush();
    lock.lock();
  }
}

void LogWriter::WriteAll(const std::string& bytes) {
  size_t at = 0;
  while (at < bytes.size()) {
    ssize_t n = write(fd_, bytes.data() + at, bytes.size() - at);
    if (n > 0) {
      at += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return;  // dropped (see Flush)
    }
  }
}

}  // namespace brig::server
