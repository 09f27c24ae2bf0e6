// Sandboxes are copy-on-write clones of one process image: each must still be its own world.
#include <gtest/gtest.h>

#include "brig/sandbox.h"
#include "test_sandbox.h"

namespace {

using brig::testing::Eval;
using brig::testing::New;

TEST(Image, FreshSandboxesHaveDifferentRandomStreams) {
  auto a = New(), b = New();
  ASSERT_TRUE(a && b);
  std::string code = "import random, os\n(random.random(), random.getrandbits(64), os.urandom(8).hex())";
  EXPECT_NE(Eval(*a, code), Eval(*b, code));
}

TEST(Image, VariablesAndFilesDoNotLeakBetweenSandboxes) {
  auto a = New(), b = New();
  ASSERT_TRUE(a && b);
  Eval(*a, "secret = 'a-only'\nopen('/home/user/a.txt', 'w').write('mine')\nopen('/tmp/t', 'w').write('x')");
  EXPECT_EQ(Eval(*b, "'secret' in globals()"), "False");
  EXPECT_EQ(Eval(*b, "import os\nos.path.exists('/home/user/a.txt'), os.path.exists('/tmp/t')"), "(False, False)");
  EXPECT_EQ(Eval(*a, "secret"), "'a-only'");
}

TEST(Image, StartsWarmAndClean) {
  auto s = New();
  ASSERT_TRUE(s);
  // The common modules are imported already, __main__ holds nothing but Python's own names.
  EXPECT_EQ(Eval(*s, "sorted(k for k in globals() if not k.startswith('__'))"), "[]");
  EXPECT_EQ(Eval(*s, "import sys\nall(m in sys.modules for m in ('json', 're', 'decimal', 'asyncio', 'pathlib'))"), "True");
  EXPECT_EQ(Eval(*s, "import os\nos.getcwd()"), "'/home/user'");
}

TEST(Image, MemoryLimitAppliesToClones) {
  brig::Limits limits;
  limits.memory_bytes = 48ull << 20;
  auto s = New(limits);
  ASSERT_TRUE(s);
  brig::ExecutionResult r = s->Execute("bytearray(64 << 20)");
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->type, "MemoryError");
}

TEST(Image, ManyClonesOneAfterAnother) {
  for (int i = 0; i < 300; ++i) {
    auto s = New();
    ASSERT_TRUE(s);
    ASSERT_EQ(Eval(*s, "n = " + std::to_string(i) + "\nn * 2"), std::to_string(i * 2));
  }
}

}  // namespace

namespace {

TEST(Reset, ClearsVariablesModulesAndFiles) {
  auto s = New();
  ASSERT_TRUE(s);
  Eval(*s, "x = 42\nimport xml.dom\nopen('/home/user/f.txt', 'w').write('data')");
  ASSERT_TRUE(s->Reset().ok());
  brig::ExecutionResult r = s->Execute("print(x)");
  ASSERT_TRUE(r.error.has_value());
  EXPECT_EQ(r.error->type, "NameError");
  EXPECT_EQ(Eval(*s, "import sys, os\n('xml.dom' in sys.modules, os.path.exists('/home/user/f.txt'))"),
            "(False, False)");
}

TEST(Reset, RevivesASandboxThatTimedOut) {
  brig::Limits limits;
  limits.timeout_seconds = 0.3;
  auto s = New(limits);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->Execute("while True: pass").failure, brig::Failure::kTimeout);
  ASSERT_TRUE(s->Reset().ok());
  EXPECT_EQ(Eval(*s, "6 * 7"), "42");
}

}  // namespace
