// Sandbox::Execute(code, ExecuteOptions): per-execution timeout and memory limits on a live
// sandbox (applied for real, refused when they cannot be), and streaming output (the same
// bytes as the result, in the order written, nothing from a rollback's replays).
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "brig/sandbox.h"

namespace {

using brig::ExecuteOptions;
using brig::ExecutionResult;
using brig::Failure;
using brig::OutputStream;
using brig::Sandbox;

constexpr uint64_t kMiB = 1ull << 20;

std::unique_ptr<Sandbox> Make(uint64_t memory = 256 * kMiB, uint64_t output_bytes = 1 * kMiB) {
  brig::Limits limits;
  limits.timeout_seconds = 10;
  limits.memory_bytes = memory;
  limits.output_bytes = output_bytes;
  auto s = Sandbox::Create(limits);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return std::move(s.value());
}

ExecutionResult Exec(Sandbox& s, const std::string& code, const ExecuteOptions& options = {}) {
  auto r = s.Execute(code, options);
  EXPECT_TRUE(r.ok()) << code << ": " << r.status().message();
  return r.ok() ? std::move(r.value()) : ExecutionResult{};
}

std::string Value(Sandbox& s, const std::string& code, const ExecuteOptions& options = {}) {
  ExecutionResult r = Exec(s, code, options);
  EXPECT_TRUE(r.ok) << code << "\n" << r.stderr_text << r.failure_message;
  return r.result.value_or("<none>");
}

ExecuteOptions Memory(uint64_t bytes) {
  ExecuteOptions o;
  o.memory_bytes = bytes;
  return o;
}

// What a callback saw: (stream, bytes) in order.
struct Recorder {
  std::vector<std::pair<OutputStream, std::string>> pieces;
  ExecuteOptions Options() {
    ExecuteOptions o;
    o.on_output = [this](OutputStream stream, std::string_view bytes) { pieces.emplace_back(stream, std::string(bytes)); };
    return o;
  }
  std::string All(OutputStream which) const {
    std::string all;
    for (const auto& [stream, bytes] : pieces) {
      if (stream == which) all += bytes;
    }
    return all;
  }
};

TEST(ExecuteOptions, LimitsOutOfRangeAreRefused) {
  auto s = Make();
  ExecuteOptions bad_timeout;
  bad_timeout.timeout_seconds = 0;
  EXPECT_TRUE(s->Execute("x = 1", bad_timeout).status().IsInvalidArgument());
  bad_timeout.timeout_seconds = 2e6;
  EXPECT_TRUE(s->Execute("x = 1", bad_timeout).status().IsInvalidArgument());
  EXPECT_TRUE(s->Execute("x = 1", Memory(8 * kMiB)).status().IsInvalidArgument());
  EXPECT_TRUE(s->Execute("x = 1", Memory(8192 * kMiB)).status().IsInvalidArgument());
  EXPECT_EQ(Value(*s, "'x' in globals()"), "False");  // nothing ran
}

TEST(ExecuteOptions, TimeoutAppliesToThisExecutionOnly) {
  auto s = Make();
  ExecuteOptions quick;
  quick.timeout_seconds = 0.3;
  Value(*s, "x = 5");
  ExecutionResult r = Exec(*s, "x = 6\nwhile True: pass", quick);
  EXPECT_EQ(r.failure, Failure::kTimeout);
  EXPECT_NE(r.failure_message.find("0.3 s"), std::string::npos) << r.failure_message;
  // The sandbox's own 10 s applies again: a 0.5 s sleep is fine.
  EXPECT_EQ(Value(*s, "import time\ntime.sleep(0.5)\nx"), "5");
}

TEST(ExecuteOptions, MemoryLimitAppliesToALiveSandbox) {
  auto s = Make(64 * kMiB);
  Value(*s, "a = bytearray(8 << 20); a[-1] = 7");  // grows under the sandbox's 64 MiB
  // More than the sandbox's own limit, for this execution: it grows past it.
  EXPECT_EQ(Value(*s, "b = bytearray(200 << 20); b[-1] = 9\nlen(b)", Memory(512 * kMiB)), "209715200");
  EXPECT_GT(s->GuestMemoryBytes(), 200 * kMiB);
  // Less than the sandbox now holds: refused, and nothing ran.
  auto refused = s->Execute("b = None", Memory(128 * kMiB));
  ASSERT_TRUE(refused.status().IsFailedPrecondition()) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("MiB"), std::string::npos);
  // A failure rolls back through the memory grown under the larger limit.
  ExecuteOptions spin = Memory(512 * kMiB);
  spin.timeout_seconds = 0.3;
  EXPECT_EQ(Exec(*s, "b[-1] = 0\nwhile True: pass", spin).failure, Failure::kTimeout);
  EXPECT_EQ(Value(*s, "(a[-1], b[-1], len(b))", Memory(512 * kMiB)), "(7, 9, 209715200)");
  // And the state survives a fork and a page snapshot.
  auto fork = s->Fork();
  ASSERT_TRUE(fork.ok()) << fork.status().message();
  EXPECT_EQ(Value(*fork.value(), "(a[-1], b[-1])", Memory(512 * kMiB)), "(7, 9)");
  auto pages = s->SavePages();
  ASSERT_TRUE(pages.ok()) << pages.status().message();
  auto small = Make(128 * kMiB);
  EXPECT_TRUE(small->RestorePages(pages.value()).IsResourceExhausted());
  auto big = Make(512 * kMiB);
  ASSERT_TRUE(big->RestorePages(pages.value()).ok());
  EXPECT_EQ(Value(*big, "(a[-1], b[-1])"), "(7, 9)");
}

TEST(ExecuteOptions, MemoryLimitBelowTheSandboxsOwnRaisesMemoryError) {
  auto s = Make(512 * kMiB);
  ExecutionResult r = Exec(*s, "b = bytearray(100 << 20)", Memory(64 * kMiB));
  ASSERT_TRUE(r.error.has_value()) << r.stdout_text;
  EXPECT_EQ(r.error->type, "MemoryError");
  // The sandbox's own limit is back for the next execution.
  EXPECT_EQ(Value(*s, "len(bytearray(100 << 20))"), "104857600");
}

// A rollback replays the runs since the last checkpoint under the memory limit each ran
// with: a MemoryError a run caught must happen again, or the replay would diverge (and the
// sandbox die).
TEST(ExecuteOptions, RollbackReplaysEachRunUnderItsOwnMemoryLimit) {
  auto s = Make(512 * kMiB);
  Value(*s, "pass");
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(Value(*s,
                    "try:\n    big = bytearray(100 << 20)\nexcept MemoryError:\n    big = None\n"
                    "caught = big is None\ncaught",
                    Memory(64 * kMiB)),
              "True");
    EXPECT_EQ(Value(*s, "len(bytearray(30 << 20))"), "31457280");  // stays under 64 MiB
  }
  ExecuteOptions spin;
  spin.timeout_seconds = 0.3;
  ExecutionResult r = Exec(*s, "while True: pass", spin);
  EXPECT_EQ(r.failure, Failure::kTimeout);
  EXPECT_NE(r.failure_message.find("rolled back"), std::string::npos) << r.failure_message;
  EXPECT_TRUE(s->usable());
  EXPECT_EQ(Value(*s, "caught"), "True");
}

TEST(ExecuteOptions, StreamingPassesOutputInOrderAsTheResultHoldsIt) {
  auto s = Make();
  Recorder rec;
  ExecutionResult r = Exec(*s,
                          "import sys\n"
                          "print('one', flush=True)\n"
                          "sys.stderr.write('two\\n'); sys.stderr.flush()\n"
                          "print('three', flush=True)\n"
                          "'value'",
                          rec.Options());
  ASSERT_TRUE(r.ok) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "one\nthree\n");
  EXPECT_EQ(r.stderr_text, "two\n");
  EXPECT_EQ(rec.All(OutputStream::kStdout), r.stdout_text);
  EXPECT_EQ(rec.All(OutputStream::kStderr), r.stderr_text);
  // The order written: one, two, three (print writes the text and the newline apart).
  std::vector<std::string> order;
  for (size_t i = 0; i < rec.pieces.size(); i++) {
    const auto& [stream, bytes] = rec.pieces[i];
    if (i > 0 && stream == rec.pieces[i - 1].first) {
      order.back() += bytes;
    } else {
      order.push_back((stream == OutputStream::kStdout ? "out:" : "err:") + bytes);
    }
  }
  EXPECT_EQ(order, (std::vector<std::string>{"out:one\n", "err:two\n", "out:three\n"}));
}

TEST(ExecuteOptions, StreamingStopsAtTheCapAndEndsWithTheMarker) {
  auto s = Make(256 * kMiB, /*output_bytes=*/100);
  Recorder rec;
  ExecutionResult r = Exec(*s, "for i in range(50): print('x' * 9, flush=True)", rec.Options());
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_EQ(rec.All(OutputStream::kStdout), r.stdout_text);
  ASSERT_FALSE(rec.pieces.empty());
  EXPECT_NE(rec.pieces.back().second.find("[brig: output truncated, 400 more bytes dropped]"), std::string::npos);
}

// Rolling back a failed execution re-runs the executions before it: their output must not
// reach this execution's callback. Only what this execution printed before failing does.
TEST(ExecuteOptions, RollbackReplaysAreSilent) {
  auto s = Make();
  Exec(*s, "print('first run')\nimport sys; sys.stderr.write('first err\\n')");
  Exec(*s, "print('second run')");
  for (const char* failing : {"print('doomed', flush=True)\nimport os\nos._exit(3)",
                              "print('doomed', flush=True)\nwhile True: pass"}) {
    Recorder rec;
    ExecuteOptions o = rec.Options();
    o.timeout_seconds = 0.3;
    ExecutionResult r = Exec(*s, failing, o);
    EXPECT_NE(r.failure, Failure::kNone) << failing;
    EXPECT_NE(r.failure_message.find("rolled back"), std::string::npos) << r.failure_message;
    EXPECT_EQ(rec.All(OutputStream::kStdout), "doomed\n") << failing;
    EXPECT_EQ(rec.All(OutputStream::kStderr), "") << failing;
    EXPECT_EQ(r.stdout_text, "doomed\n");
  }
  // brig's own guest work (a portable snapshot) is silent too, and the callback is not kept.
  Recorder later;
  Exec(*s, "y = 2", later.Options());
  ASSERT_TRUE(s->SavePortable().ok());
  EXPECT_EQ(Value(*s, "print('after'); 1"), "1");
  EXPECT_TRUE(later.pieces.empty());
}

TEST(ExecuteOptions, ACallbackThatThrowsIsNotCalledAgainAndTheExecutionGoesOn) {
  auto s = Make();
  int calls = 0;
  ExecuteOptions o;
  o.on_output = [&calls](OutputStream, std::string_view) {
    calls++;
    throw std::runtime_error("client gone");
  };
  ExecutionResult r = Exec(*s, "for i in range(3): print(i, flush=True)\nz = 3\nz", o);
  EXPECT_TRUE(r.ok) << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "0\n1\n2\n");
  EXPECT_EQ(r.result, "3");
  EXPECT_EQ(calls, 1);
}

}  // namespace
