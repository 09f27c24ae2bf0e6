// Sandbox::Fork: a fork starts with its parent's variables, modules, files and open
// descriptors, then the two diverge both ways; forks of forks; several forks of one state;
// Reset after a fork; forks made and run on several threads.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "brig/sandbox.h"

namespace {

using brig::ExecutionResult;
using brig::Failure;
using brig::Sandbox;

std::unique_ptr<Sandbox> Make(double timeout = 5) {
  brig::Limits limits;
  limits.timeout_seconds = timeout;
  auto s = Sandbox::Create(limits);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return std::move(s.value());
}

std::string Value(Sandbox& s, const std::string& code) {
  ExecutionResult r = s.Execute(code);
  EXPECT_TRUE(r.ok) << code << "\n" << r.stderr_text << r.failure_message;
  return r.result.value_or("<none>");
}

std::unique_ptr<Sandbox> ForkOf(Sandbox& s) {
  auto f = s.Fork();
  EXPECT_TRUE(f.ok()) << f.status().message();
  return f.ok() ? std::move(f.value()) : nullptr;
}

constexpr const char* kState =
    "import random\n"
    "x = 1\n"
    "data = {'k': [1, 2, 3]}\n"
    "def twice(v): return 2 * v\n"
    "open('/home/user/shared.txt', 'w').write('parent')\n"
    "out = open('/tmp/out.txt', 'w+')\n"
    "out.write('a'); out.flush()\n";

TEST(Fork, StartsWithTheParentsState) {
  auto parent = Make();
  Value(*parent, kState);
  auto child = ForkOf(*parent);
  ASSERT_TRUE(child);
  EXPECT_EQ(Value(*child, "x, data, twice(21), open('/home/user/shared.txt').read(), out.tell()"),
            "(1, {'k': [1, 2, 3]}, 42, 'parent', 1)");
}

TEST(Fork, DivergesBothWays) {
  auto parent = Make();
  Value(*parent, kState);
  auto child = ForkOf(*parent);
  ASSERT_TRUE(child);
  Value(*child, "x = 2\ndata['k'].append('child')\nopen('/home/user/shared.txt', 'w').write('child')\n"
                "open('/tmp/only_child', 'w')\nout.write('c'); out.flush()\n");
  Value(*parent, "x = 3\ndata['k'].append('parent')\nopen('/tmp/only_parent', 'w')\nout.write('p'); out.flush()\n");
  EXPECT_EQ(Value(*parent, "import os\nx, data, open('/home/user/shared.txt').read(), sorted(os.listdir('/tmp')), "
                           "open('/tmp/out.txt').read()"),
            "(3, {'k': [1, 2, 3, 'parent']}, 'parent', ['only_parent', 'out.txt'], 'ap')");
  EXPECT_EQ(Value(*child, "import os\nx, data, open('/home/user/shared.txt').read(), sorted(os.listdir('/tmp')), "
                          "open('/tmp/out.txt').read()"),
            "(2, {'k': [1, 2, 3, 'child']}, 'child', ['only_child', 'out.txt'], 'ac')");
}

TEST(Fork, RandomStreamsDiffer) {
  auto parent = Make();
  Value(*parent, "import random, os\nrandom.random()");
  auto child = ForkOf(*parent);
  ASSERT_TRUE(child);
  EXPECT_NE(Value(*parent, "[random.random() for _ in range(3)]"), Value(*child, "[random.random() for _ in range(3)]"));
  EXPECT_NE(Value(*parent, "os.urandom(8)"), Value(*child, "os.urandom(8)"));
  // The parent's stream is untouched by the fork: it goes on as it would have.
  auto again = Make();
  Value(*again, "import random\nrandom.seed(11)\nrandom.random()");
  auto twin = ForkOf(*again);
  ASSERT_TRUE(twin);
  EXPECT_EQ(Value(*again, "random.random()"), Value(*Make(), "import random\nr = random.Random(11); r.random(); r.random()"));
}

TEST(Fork, SecondForkOfTheSameState) {
  auto parent = Make();
  Value(*parent, kState);
  auto a = ForkOf(*parent);
  auto b = ForkOf(*parent);
  ASSERT_TRUE(a && b);
  Value(*a, "x = 'a'");
  Value(*b, "x = 'b'");
  EXPECT_EQ(Value(*a, "x, data"), "('a', {'k': [1, 2, 3]})");
  EXPECT_EQ(Value(*b, "x, data"), "('b', {'k': [1, 2, 3]})");
  EXPECT_EQ(Value(*parent, "x"), "1");
  // After the parent runs again, a fork sees the new state.
  Value(*parent, "x = 'later'");
  auto c = ForkOf(*parent);
  EXPECT_EQ(Value(*c, "x"), "'later'");
}

TEST(Fork, ForkOfAFork) {
  auto parent = Make();
  Value(*parent, kState);
  auto child = ForkOf(*parent);
  Value(*child, "x = 'child'\nbig = list(range(100000))\nopen('/tmp/c', 'w').write('c')\n");
  auto grandchild = ForkOf(*child);
  ASSERT_TRUE(grandchild);
  EXPECT_EQ(Value(*grandchild, "x, len(big), open('/tmp/c').read(), data"), "('child', 100000, 'c', {'k': [1, 2, 3]})");
  Value(*grandchild, "x = 'grandchild'\nbig.append(1)\n");
  EXPECT_EQ(Value(*child, "x, len(big)"), "('child', 100000)");
  EXPECT_EQ(Value(*parent, "x, 'big' in globals()"), "(1, False)");
  auto great = ForkOf(*grandchild);
  EXPECT_EQ(Value(*great, "x, len(big)"), "('grandchild', 100001)");
}

TEST(Fork, ForksOfSandboxesThatHaveNotRunYet) {
  auto fresh = Make();
  auto a = ForkOf(*fresh);
  ASSERT_TRUE(a);
  EXPECT_EQ(Value(*a, "import os\n'x' in globals(), os.listdir('/tmp')"), "(False, [])");
  auto parent = Make();
  Value(*parent, kState);
  auto b = ForkOf(*parent);
  auto c = ForkOf(*b);  // b has not run: c starts from the same state
  auto d = ForkOf(*c);
  ASSERT_TRUE(d);
  EXPECT_EQ(Value(*d, "x, data, out.tell()"), "(1, {'k': [1, 2, 3]}, 1)");
  EXPECT_EQ(Value(*c, "x = 'c'\nx"), "'c'");
  EXPECT_EQ(Value(*b, "x"), "1");
  EXPECT_NE(Value(*b, "random.random()"), Value(*d, "random.random()"));
}

TEST(Fork, ResetAfterFork) {
  auto parent = Make();
  Value(*parent, kState);
  auto child = ForkOf(*parent);
  ASSERT_TRUE(child->Reset().ok());
  EXPECT_EQ(Value(*child, "import os\n'x' in globals(), os.listdir('/tmp')"), "(False, [])");
  EXPECT_EQ(Value(*parent, "x, open('/home/user/shared.txt').read()"), "(1, 'parent')");
  auto again = ForkOf(*child);
  EXPECT_EQ(Value(*again, "'x' in globals()"), "False");
}

TEST(Fork, TheParentOutlivesItsForksAndTheyOutliveIt) {
  auto parent = Make();
  Value(*parent, kState);
  auto child = ForkOf(*parent);
  parent.reset();
  EXPECT_EQ(Value(*child, "x, open('/home/user/shared.txt').read()"), "(1, 'parent')");
  auto grandchild = ForkOf(*child);
  child.reset();
  EXPECT_EQ(Value(*grandchild, "twice(x)"), "2");
}

TEST(Fork, ForksRollBackToTheirOwnState) {
  auto parent = Make(0.3);
  Value(*parent, kState);
  auto child = ForkOf(*parent);
  Value(*child, "x = 'child'");
  EXPECT_EQ(child->Execute("x = 'lost'\nwhile True: pass").failure, Failure::kTimeout);
  EXPECT_EQ(Value(*child, "x"), "'child'");
  EXPECT_EQ(parent->Execute("x = 'lost'\nimport os\nos.abort()").failure, Failure::kTrap);
  EXPECT_EQ(Value(*parent, "x"), "1");
  EXPECT_EQ(Value(*child, "x"), "'child'");
}

TEST(Fork, ABigSessionForksAndBothSidesKeepTheirChanges) {
  auto parent = Make();
  Value(*parent, "rows = [{'id': i, 'name': 'n%d' % i} for i in range(100000)]\nblob = bytearray(b'q' * (16 << 20))\n");
  Value(*parent, "n = 1");  // the next execution's checkpoint freezes what it grew into
  auto child = ForkOf(*parent);
  ASSERT_TRUE(child);
  Value(*child, "rows[5]['name'] = 'child'\nblob[:3] = b'CCC'\n");
  Value(*parent, "rows[5]['name'] = 'parent'\nblob[-3:] = b'PPP'\n");
  EXPECT_EQ(Value(*child, "rows[5]['name'], bytes(blob[:3]), bytes(blob[-3:]), len(rows)"), "('child', b'CCC', b'qqq', 100000)");
  EXPECT_EQ(Value(*parent, "rows[5]['name'], bytes(blob[:3]), bytes(blob[-3:]), len(rows)"), "('parent', b'qqq', b'PPP', 100000)");
}

TEST(Fork, CompactedSandboxesFork) {
  auto parent = Make();
  Value(*parent, kState);
  ASSERT_TRUE(parent->Compact().ok());
  auto child = ForkOf(*parent);
  ASSERT_TRUE(child);
  ASSERT_TRUE(child->Compact().ok());
  EXPECT_EQ(Value(*child, "x, twice(4)"), "(1, 8)");
  EXPECT_EQ(Value(*parent, "x, twice(5)"), "(1, 10)");
}

TEST(Fork, ConcurrentForksOfOneSandboxAndTheirExecutions) {
  auto parent = Make();
  Value(*parent, kState);
  std::vector<std::unique_ptr<Sandbox>> children(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; t++) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 8; i += 2) {
        children[i] = ForkOf(*parent);
        if (!children[i]) continue;
        std::string v = Value(*children[i], "x = " + std::to_string(i) + "\nfor _ in range(3): data['k'].append(x)\n"
                                            "open('/tmp/mine', 'w').write(str(x))\nrandom.random()");
        EXPECT_NE(v, "<none>");
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < 8; i++) {
    ASSERT_TRUE(children[i]) << i;
    std::string n = std::to_string(i);
    EXPECT_EQ(Value(*children[i], "x, data['k'][3:], open('/tmp/mine').read()"),
              "(" + n + ", [" + n + ", " + n + ", " + n + "], '" + n + "')");
  }
  EXPECT_EQ(Value(*parent, "x, data"), "(1, {'k': [1, 2, 3]})");
}

TEST(Fork, ForksOfDifferentSandboxesOnTwoThreads) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; t++) {
    threads.emplace_back([t] {
      auto s = Make();
      Value(*s, "x = " + std::to_string(t));
      for (int i = 0; i < 5; i++) {
        auto f = ForkOf(*s);
        ASSERT_TRUE(f);
        EXPECT_EQ(Value(*f, "x = x + 1\nx"), std::to_string(t + i + 1));
        s = std::move(f);
      }
    });
  }
  for (auto& th : threads) th.join();
}

TEST(Fork, PipesAreCopiedWithTheirBytesAndDiverge) {
  auto parent = Make();
  Value(*parent, "import os\nr, w = os.pipe()\nos.write(w, b'shared')");
  auto child = ForkOf(*parent);
  ASSERT_TRUE(child);
  EXPECT_EQ(Value(*child, "os.write(w, b'+child'); os.read(r, 100)"), "b'shared+child'");
  EXPECT_EQ(Value(*parent, "os.read(r, 100)"), "b'shared'");
  // Closing the child's write end does not end the parent's pipe.
  EXPECT_EQ(Value(*child, "os.close(w); os.read(r, 1)"), "b''");
  EXPECT_EQ(Value(*parent, "try:\n    os.read(r, 1)\nexcept BlockingIOError:\n    ok = 'open'\nok"), "'open'");
}

TEST(Fork, AFailedExecutionRollsBackWhatItPutInAPipe) {
  auto s = Make(0.5);
  Value(*s, "import os\nr, w = os.pipe()\nos.write(w, b'kept')");
  ExecutionResult r = s->Execute("os.write(w, b'lost')\nos.read(r, 2)\nwhile True: pass\n");
  EXPECT_EQ(r.failure, Failure::kTimeout);
  EXPECT_EQ(Value(*s, "os.read(r, 100)"), "b'kept'");
}

}  // namespace
