// Transactional executions: an execution that hits a limit or traps leaves the sandbox
// exactly as it was before it (variables, modules, files, open descriptors, memory size,
// random and clock state), the result still says what happened, and the sandbox goes on.
// An ordinary Python exception keeps what was done before it.
#include <gtest/gtest.h>

#include <string>

#include "brig/sandbox.h"

namespace {

using brig::ExecutionResult;
using brig::Failure;
using brig::Sandbox;

std::unique_ptr<Sandbox> Make(double timeout = 0.5, uint64_t memory = 256ull << 20) {
  brig::Limits limits;
  limits.timeout_seconds = timeout;
  limits.memory_bytes = memory;
  auto s = Sandbox::Create(limits);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return std::move(s.value());
}

ExecutionResult Ok(Sandbox& s, const std::string& code) {
  ExecutionResult r = s.Execute(code);
  EXPECT_TRUE(r.ok) << code << "\n" << r.stderr_text << r.failure_message;
  EXPECT_EQ(r.failure, Failure::kNone) << code;
  return r;
}

std::string Value(Sandbox& s, const std::string& expr) { return Ok(s, expr).result.value_or("<none>"); }

// State made before the failing execution, and what checks that it is all still there.
void MakeState(Sandbox& s) {
  Ok(s,
     "import json\n"
     "x = 41\n"
     "items = [1, 2, 3]\n"
     "class Box:\n"
     "    def __init__(self, v): self.v = v\n"
     "box = Box('kept')\n"
     "with open('/home/user/before.txt', 'w') as f: f.write('before')\n"
     "log = open('/tmp/log.txt', 'w+')\n"
     "log.write('one\\n'); log.flush()\n");
}

// What a failing execution does before it fails: changes everything it can reach.
const char* kDamage =
    "x = 0\n"
    "items.append(4)\n"
    "box.v = 'changed'\n"
    "del json\n"
    "import csv\n"
    "new_name = 1\n"
    "with open('/home/user/before.txt', 'a') as f: f.write(' and during')\n"
    "with open('/home/user/during.txt', 'w') as f: f.write('during')\n"
    "import os\n"
    "os.mkdir('/tmp/newdir')\n"
    "log.write('two\\n'); log.flush()\n";

void ExpectOldState(Sandbox& s) {
  EXPECT_EQ(Value(s, "x"), "41");
  EXPECT_EQ(Value(s, "items"), "[1, 2, 3]");
  EXPECT_EQ(Value(s, "box.v"), "'kept'");
  EXPECT_EQ(Value(s, "'json' in globals(), 'csv' in globals(), 'new_name' in globals()"), "(True, False, False)");
  EXPECT_EQ(Value(s, "open('/home/user/before.txt').read()"), "'before'");
  EXPECT_EQ(Value(s, "import os\nos.path.exists('/home/user/during.txt'), os.path.exists('/tmp/newdir')"),
            "(False, False)");
  // The open file kept its position and contents.
  EXPECT_EQ(Value(s, "log.tell(), open('/tmp/log.txt').read()"), "(4, 'one\\n')");
  EXPECT_EQ(Value(s, "log.write('three\\n'); log.flush(); open('/tmp/log.txt').read()"), "'one\\nthree\\n'");
}

void CheckRollback(const std::string& failing, Failure expected, double timeout = 0.5) {
  auto s = Make(timeout);
  MakeState(*s);
  uint64_t memory = s->GuestMemoryBytes();
  ExecutionResult r = s->Execute(std::string(kDamage) + failing);
  EXPECT_EQ(r.failure, expected) << r.failure_message << r.stderr_text;
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.failure_message.find("rolled back"), std::string::npos) << r.failure_message;
  EXPECT_EQ(s->GuestMemoryBytes(), memory);
  ExpectOldState(*s);
  // And it keeps working: new state sticks.
  Ok(*s, "x = 42");
  EXPECT_EQ(Value(*s, "x"), "42");
}

TEST(Rollback, InfiniteLoop) { CheckRollback("while True:\n    pass\n", Failure::kTimeout); }

TEST(Rollback, CLevelLoop) { CheckRollback("sum(range(10**12))\n", Failure::kTimeout); }

TEST(Rollback, BlockingSleep) { CheckRollback("import time\ntime.sleep(100)\n", Failure::kTimeout); }

TEST(Rollback, OutputFlood) {
  auto s = Make(0.5);
  MakeState(*s);
  ExecutionResult r = s->Execute(std::string(kDamage) + "while True:\n    print('x' * 1000)\n");
  EXPECT_EQ(r.failure, Failure::kTimeout);
  EXPECT_TRUE(r.stdout_truncated);  // the output up to the timeout is still reported
  EXPECT_FALSE(r.stdout_text.empty());
  ExpectOldState(*s);
}

TEST(Rollback, MemoryBombThatTimesOutGivesTheMemoryBack) {
  auto s = Make(1.0, 128ull << 20);
  MakeState(*s);
  uint64_t memory = s->GuestMemoryBytes();
  ExecutionResult r = s->Execute(std::string(kDamage) +
                                 "blocks = []\n"
                                 "try:\n"
                                 "    while True: blocks.append(bytearray(1 << 20))\n"
                                 "except MemoryError:\n"
                                 "    pass\n"
                                 "while True: pass\n");
  EXPECT_EQ(r.failure, Failure::kTimeout) << r.failure_message;
  EXPECT_EQ(s->GuestMemoryBytes(), memory);
  ExpectOldState(*s);
  EXPECT_EQ(Value(*s, "'blocks' in globals()"), "False");
}

TEST(Rollback, MemoryBombIsAnOrdinaryExceptionThatKeepsWhatCameBefore) {
  auto s = Make(5.0, 64ull << 20);
  MakeState(*s);
  ExecutionResult r = s->Execute("x = 'set before'\nblocks = []\nwhile True:\n    blocks.append(bytearray(1 << 20))\n");
  ASSERT_TRUE(r.error.has_value()) << r.failure_message;
  EXPECT_EQ(r.error->type, "MemoryError");
  EXPECT_EQ(r.failure, Failure::kNone);
  EXPECT_EQ(Value(*s, "x"), "'set before'");  // as a REPL would
  EXPECT_EQ(Value(*s, "del blocks\nlen(bytearray(8 << 20))"), std::to_string(8 << 20));
}

TEST(Rollback, DeepRecursionIsAnOrdinaryException) {
  auto s = Make();
  MakeState(*s);
  ExecutionResult r = s->Execute("x = 'changed'\ndef f(n): return f(n + 1)\nf(0)\n");
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->type, "RecursionError");
  EXPECT_EQ(Value(*s, "x"), "'changed'");
}

TEST(Rollback, NativeStackExhaustionTrap) {
  CheckRollback(
      "import sys\n"
      "sys.setrecursionlimit(10 ** 7)\n"
      "class A:\n"
      "    def __getattr__(self, name):\n"
      "        return getattr(self, name)\n"
      "A().x\n",
      Failure::kTrap);
}

TEST(Rollback, AbortTrap) { CheckRollback("import os\nos.abort()\n", Failure::kTrap); }

TEST(Rollback, OsExitRollsBackAndReportsTheCode) {
  auto s = Make();
  MakeState(*s);
  ExecutionResult r = s->Execute(std::string(kDamage) + "os._exit(3)\n");
  EXPECT_EQ(r.failure, Failure::kExit);
  EXPECT_EQ(r.exit_code, 3);
  ExpectOldState(*s);
}

TEST(Rollback, SysExitIsAnOrdinaryResultAndKeepsState) {
  auto s = Make();
  ExecutionResult r = s->Execute("x = 5\nimport sys\nsys.exit(2)\n");
  EXPECT_EQ(r.failure, Failure::kNone);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(Value(*s, "x"), "5");
}

TEST(Rollback, APythonExceptionKeepsWhatCameBeforeIt) {
  auto s = Make();
  Ok(*s, "x = 1");
  ExecutionResult r = s->Execute("x = 2\nopen('/tmp/f', 'w').write('kept')\nraise ValueError('no')\n");
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(Value(*s, "x, open('/tmp/f').read()"), "(2, 'kept')");
}

TEST(Rollback, RandomAndClocksContinueAsIfTheFailureNeverHappened) {
  auto s = Make();
  Ok(*s, "import random, time\nrandom.seed(5)\nfirst = random.random()\nt = time.time()\n");
  ExecutionResult r = s->Execute("[random.random() for _ in range(10)]\nwhile True: pass\n");
  EXPECT_EQ(r.failure, Failure::kTimeout);
  // The stream goes on from where the last good execution left it.
  EXPECT_EQ(Value(*s, "r = random.Random(5); r.random(); random.random() == r.random()"), "True");
  EXPECT_EQ(Value(*s, "t == t and first == random.Random(5).random()"), "True");
}

TEST(Rollback, AfterManyExecutionsAndCheckpoints) {
  // Enough executions that the sandbox takes new checkpoints along the way; each failure
  // must land exactly on the state of the execution before it.
  auto s = Make(0.3);
  Ok(*s, "import os, time, random\nacc = []\nstamps = []\n");
  for (int i = 0; i < 60; i++) {
    Ok(*s, "acc.append(" + std::to_string(i) + ")\n"
           "open('/tmp/f%d' % (len(acc) % 5), 'w').write(str(acc))\n"
           "stamps.append((time.time(), random.random(), os.stat('/tmp/f0').st_mtime_ns if os.path.exists('/tmp/f0') else 0))\n");
    if (i % 15 == 14) {
      std::string before = Value(*s, "repr((acc, stamps, sorted(os.listdir('/tmp'))))");
      ExecutionResult r = s->Execute("acc.clear()\nstamps.append(1)\nopen('/tmp/zz', 'w')\nwhile True: pass\n");
      ASSERT_EQ(r.failure, Failure::kTimeout) << i;
      EXPECT_EQ(Value(*s, "repr((acc, stamps, sorted(os.listdir('/tmp'))))"), before) << i;
    }
  }
  EXPECT_EQ(Value(*s, "len(acc), sum(acc)"), "(60, 1770)");
}

TEST(Rollback, MemoryItGrewIntoEarlierStaysAndChangesToItAreUndone) {
  auto s = Make(0.5);
  // Grows memory (a big object): the next execution's checkpoint freezes what it grew into.
  Ok(*s, "data = bytearray(b'abc' * (8 << 20))\nsig = data[:6] + data[-6:]\n");
  Ok(*s, "n = 1");
  uint64_t memory = s->GuestMemoryBytes();
  ExecutionResult r = s->Execute("data[:6] = b'XXXXXX'\ndata[-6:] = b'YYYYYY'\nmore = bytearray(30 << 20)\nwhile True: pass\n");
  EXPECT_EQ(r.failure, Failure::kTimeout);
  EXPECT_EQ(s->GuestMemoryBytes(), memory);
  EXPECT_EQ(Value(*s, "data[:6] + data[-6:] == sig, len(data)"), "(True, 25165824)");
  Ok(*s, "data[:3] = b'zzz'");
  EXPECT_EQ(Value(*s, "bytes(data[:6])"), "b'zzzabc'");
}

TEST(Rollback, SeveralFailuresInARow) {
  auto s = Make(0.3);
  MakeState(*s);
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(s->Execute(std::string(kDamage) + "while True: pass\n").failure, Failure::kTimeout);
    EXPECT_EQ(s->Execute(std::string(kDamage) + "import os\nos.abort()\n").failure, Failure::kTrap);
  }
  ExpectOldState(*s);
}

TEST(Rollback, FirstExecutionOfAFreshSandbox) {
  auto s = Make(0.3);
  EXPECT_EQ(s->Execute("x = 1\nopen('/tmp/a', 'w')\nwhile True: pass").failure, Failure::kTimeout);
  EXPECT_EQ(Value(*s, "import os\n'x' in globals(), os.listdir('/tmp')"), "(False, [])");
}

TEST(Rollback, AfterCompact) {
  auto s = Make(0.3);
  MakeState(*s);
  ASSERT_TRUE(s->Compact().ok());
  EXPECT_EQ(s->Execute(std::string(kDamage) + "while True: pass\n").failure, Failure::kTimeout);
  ExpectOldState(*s);  // which writes 'three' to the log
  ASSERT_TRUE(s->Compact().ok());
  ASSERT_TRUE(s->Compact().ok());
  EXPECT_EQ(Value(*s, "x, box.v, log.tell(), open('/tmp/log.txt').read()"), "(41, 'kept', 10, 'one\\nthree\\n')");
}

TEST(Rollback, ColdStartedSandboxesRollBackToo) {
  brig::Limits limits;
  limits.timeout_seconds = 0.3;
  auto s = Sandbox::Create(limits, brig::Start::kCold);
  ASSERT_TRUE(s.ok());
  MakeState(*s.value());
  EXPECT_EQ(s.value()->Execute(std::string(kDamage) + "while True: pass\n").failure, Failure::kTimeout);
  ExpectOldState(*s.value());
}

TEST(Rollback, AnExecutionThatReadsTheClockMillionsOfTimes) {
  // Too much to record for a replay: the sandbox checkpoints after it instead.
  auto s = Make(1.0);
  Ok(*s, "import time\nn = 0\nend = time.monotonic() + 0.5\nwhile time.monotonic() < end: n += 1\nx = 'after'\n");
  EXPECT_EQ(s->Execute("x = 'lost'\nwhile True: time.monotonic()").failure, Failure::kTimeout);
  EXPECT_EQ(Value(*s, "x, n > 100000"), "('after', True)");
}

TEST(Rollback, FilesWrittenFromTheHostBetweenExecutionsAreKept) {
  auto s = Make(0.3);
  Ok(*s, "x = 1");
  ASSERT_TRUE(s->WriteFile("/home/user/host.txt", "from host").ok());
  EXPECT_EQ(s->Execute("open('/home/user/host.txt', 'w').write('guest')\nwhile True: pass").failure,
            Failure::kTimeout);
  EXPECT_EQ(s->ReadFile("/home/user/host.txt").value_or(""), "from host");
  EXPECT_EQ(Value(*s, "x, open('/home/user/host.txt').read()"), "(1, 'from host')");
}

}  // namespace
