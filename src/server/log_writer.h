// Log lines written to a file descriptor in batches, by a thread of their own. A request's log
// line written on its own cost a write() each (~3 µs of the HTTP thread's ~45 µs per request
// here, bench/RESULTS.md 2026-12-05); lines are now gathered and written together, at most
// `max_delay` after the first of them, or as soon as `max_bytes` are waiting. The thread that
// logs only appends (and wakes the writer once per batch); it writes itself only when the
// writer has fallen kBackpressure batches behind (a full pipe), as a plain write would block.
//
// What a crash of the process loses: the lines of its last `max_delay` (flushed on
// destruction and by Flush(), so an orderly stop loses none).
//
// Thread-safety: Line() and Flush() may be called from any thread. Lines keep their order.
#ifndef BRIG_SERVER_LOG_WRITER_H_
#define BRIG_SERVER_LOG_WRITER_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace brig::server {

class LogWriter {
 public:
  // `fd` is borrowed (not closed) and must stay open as long as this.
  explicit LogWriter(int fd, std::chrono::milliseconds max_delay = std::chrono::milliseconds(50),
                     size_t max_bytes = 64 * 1024);
  ~LogWriter();  // writes what is waiting
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Queues `line` and a newline.
  void Line(std::string_view line);
  // Writes everything queued before it returns. A write that fails (a closed pipe, a full
  // disk) drops those lines rather than stopping the server.
  void Flush();

 private:
  static constexpr size_t kBackpressure = 8;

  void Run();
  // Writes `bytes` whole (retrying short writes and EINTR). REQUIRES: write_mu_ held.
  void WriteAll(const std::string& bytes);

  const int fd_;
  const std::chrono::milliseconds max_delay_;
  const size_t max_bytes_;
  std::mutex mu_;  // guards the fields below
  std::condition_variable wake_;
  std::string waiting_;
  bool stop_ = false;
  std::mutex write_mu_;  // one write at a time, in the order the batches were taken
  std::string writing_;  // GUARDED_BY(write_mu_): the batch being written; keeps its capacity
  std::thread flusher_;
};

}  // namespace brig::server

#endif
