// LogWriter (server/log_writer.h): lines reach the descriptor whole, in order, and all of
// them: after Flush, after destruction, on their own once the delay has passed or a batch is
// full, and when the logging threads have to write themselves.
#include "server/log_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace brig::server {
namespace {

// A pipe whose read end is drained without blocking.
struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() {
    EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);  // room for every line of a test
  }
  ~Pipe() {
    for (int fd : fds)
      if (fd >= 0) close(fd);
  }
  std::string Drain() {
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }
};

TEST(LogWriter, FlushWritesEveryLineInOrder) {
  Pipe p;
  LogWriter log(p.fds[1], std::chrono::hours(1));  // only Flush writes
  log.Line("one");
  log.Line("{\"two\":2}");
  EXPECT_EQ(p.Drain(), "");
  log.Flush();
  EXPECT_EQ(p.Drain(), "one\n{\"two\":2}\n");
  log.Flush();  // nothing waiting: nothing written
  EXPECT_EQ(p.Drain(), "");
}

TEST(LogWriter, DestructionWritesWhatIsWaiting) {
  Pipe p;
  {
    LogWriter log(p.fds[1], std::chrono::hours(1));
    log.Line("last words");
  }
  EXPECT_EQ(p.Drain(), "last words\n");
}

TEST(LogWriter, LinesGoOutOnTheirOwnAfterTheDelay) {
  Pipe p;
  LogWriter log(p.fds[1], std::chrono::milliseconds(5));
  log.Line("soon");
  std::string got;
  for (int i = 0; i < 2000 && got.empty(); i++) {  // up to 20 s on a very slow machine
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    got = p.Drain();
  }
  EXPECT_EQ(got, "soon\n");
  log.Line("again");  // the flusher sleeps until a line comes, then starts its clock again
  got.clear();
  for (int i = 0; i < 2000 && got.empty(); i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    got = p.Drain();
  }
  EXPECT_EQ(got, "again\n");
}

TEST(LogWriter, AFullBatchGoesOutWithoutWaitingForTheDelay) {
  Pipe p;
  LogWriter log(p.fds[1], std::chrono::hours(1), /*max_bytes=*/16);
  log.Line("0123456");  // 8 bytes with its newline: the writer waits (an hour)
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(p.Drain(), "");
  log.Line("abcdefg");  // 16: the writer is told, and writes
  std::string got;
  for (int i = 0; i < 2000 && got.size() < 16; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    got += p.Drain();
  }
  EXPECT_EQ(got, "0123456\nabcdefg\n");
}

TEST(LogWriter, ManyThreadsLoseNoLineAndSplitNone) {
  Pipe p;
  constexpr int kThreads = 4, kLines = 2000;
  {
    // Small batches: the writer falls behind, and the logging threads write themselves
    // (kBackpressure) as well as waking it.
    LogWriter log(p.fds[1], std::chrono::milliseconds(1), /*max_bytes=*/64);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; t++) {
      threads.emplace_back([&log, t] {
        for (int i = 0; i < kLines; i++) log.Line("thread " + std::to_string(t) + " line " + std::to_string(i));
      });
    }
    for (auto& t : threads) t.join();
  }
  std::string all = p.Drain();
  std::vector<int> next(kThreads, 0);
  size_t at = 0, lines = 0;
  while (at < all.size()) {
    size_t end = all.find('\n', at);
    ASSERT_NE(end, std::string::npos);
    int t = -1, i = -1;
    ASSERT_EQ(sscanf(all.substr(at, end - at).c_str(), "thread %d line %d", &t, &i), 2) << all.substr(at, end - at);
    ASSERT_TRUE(t >= 0 && t < kThreads);
    EXPECT_EQ(i, next[t]) << "thread " << t << "'s lines out of order";
    next[t] = i + 1;
    lines++;
    at = end + 1;
  }
  EXPECT_EQ(lines, static_cast<size_t>(kThreads * kLines));
}

TEST(LogWriter, AClosedReaderDropsLinesWithoutStopping) {
  Pipe p;
  close(p.fds[0]);
  p.fds[0] = -1;
  signal(SIGPIPE, SIG_IGN);  // as brig serve does
  LogWriter log(p.fds[1], std::chrono::hours(1));
  log.Line("nobody reads this");
  log.Flush();  // EPIPE: dropped
  log.Line("nor this");
}

}  // namespace
}  // namespace brig::server
