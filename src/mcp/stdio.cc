// The stdio transport (stdio.h).
#include "mcp/stdio.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace brig::mcp {

using nlohmann::json;

namespace {

class Writer {
 public:
  explicit Writer(int fd) : fd_(fd) {}
  void WriteLine(std::string line) {
    line += '\n';
    std::lock_guard lock(mu_);
    size_t off = 0;
    while (off < line.size() && !failed_) {
      ssize_t n = ::write(fd_, line.data() + off, line.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) failed_ = true;
      else off += static_cast<size_t>(n);
    }
  }
  bool failed() {
    std::lock_guard lock(mu_);
    return failed_;
  }

 private:
  int fd_;
  std::mutex mu_;
  bool failed_ = false;
};

}  // namespace

int ServeStdio(const McpServer& server, const Caller& caller, int in_fd, int out_fd, int threads) {
  Writer writer(out_fd);
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> queue;
  bool done = false;
  std::vector<std::thread> workers;
  for (int i = 0; i < std::max(1, threads); ++i)
    workers.emplace_back([&] {
      while (true) {
        std::string line;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return done || !queue.empty(); });
          if (queue.empty()) return;
          line = std::move(queue.front());
          queue.pop_front();
        }
        json error;
        auto message = server.Parse(line, &error);
        if (!message) {
          writer.WriteLine(Dump(error));
          continue;
        }
        // Notifications first (subscriptions/listen's acknowledgement precedes its result).
        Exchange ex = server.Process(*message, caller);
        for (const auto& n : ex.notifications) writer.WriteLine(Dump(n));
        if (ex.response) writer.WriteLine(Dump(*ex.response));
      }
    });
  auto submit = [&](std::string line) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) return;  // blank line
    std::lock_guard lock(mu);
    queue.push_back(std::move(line));
    cv.notify_one();
  };

  const size_t max = server.options().max_message_bytes;
  std::string line;
  bool skipping = false;  // inside a line that is too long
  bool read_failed = false;
  std::vector<char> buf(1 << 16);
  while (true) {
    ssize_t n = ::read(in_fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) read_failed = true;
    if (n <= 0) break;
    const char* p = buf.data();
    const char* end = p + n;
    while (p < end) {
      const char* nl = static_cast<const char*>(memchr(p, '\n', end - p));
      const char* stop = nl ? nl : end;
      if (!skipping) {
        line.append(p, stop);
        if (line.size() > max) {
          skipping = true;
          line.clear();
          line.shrink_to_fit();
        }
      }
      if (nl) {
        if (skipping) {
          writer.WriteLine(Dump(ErrorResponse(nullptr, kParseError,
                                              "message too large (more than " + std::to_string(max) + " bytes): skipped")));
          skipping = false;
        } else {
          submit(std::move(line));
        }
        line.clear();
      }
      p = nl ? nl + 1 : end;
    }
  }
  if (!skipping) submit(std::move(line));  // a last message without a newline
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  for (auto& t : workers) t.join();
  return read_failed || writer.failed() ? 1 : 0;
}

}  // namespace brig::mcp
