// A save may compare the pages the save before it found instead of walking the page tables
// again (PagesSave::candidates_reused), when only executions that took no page fault came
// between them. These tests try to make such a save miss a page: new memory, image pages
// written for the first time, files, restores. A missed page would restore an older value.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "brig/sandbox.h"
#include "test_sandbox.h"

namespace brig {
namespace {

using testing::Eval;

Sandbox::PagesSave Save(Sandbox& s) {
  auto saved = s.SavePages(Sandbox::PagesSaveOptions{});
  EXPECT_TRUE(saved.ok()) << saved.status().message();
  return saved.ok() ? std::move(saved.value()) : Sandbox::PagesSave{};
}

// `code`'s value in a new sandbox restored from `snapshot`.
std::string EvalRestored(const std::string& snapshot, const std::string& code) {
  auto b = testing::New();
  if (!b) return "<no sandbox>";
  Status restored = b->RestorePages(snapshot);
  EXPECT_TRUE(restored.ok()) << restored.message();
  return Eval(*b, code);
}

// Small executions until saves reuse their candidates (a few may fault while the session's
// memory settles); the count of executions it took, or -1.
int SettleUntilReused(Sandbox& s) {
  for (int i = 0; i < 50; i++) {
    Eval(s, "n += 1");
    if (Save(s).candidates_reused) return i;
  }
  return -1;
}

// A sandbox with `n = 0` whose saves reuse their candidates already (null, with a test
// failure, if it cannot be made or never reuses).
std::unique_ptr<Sandbox> SettledSandbox() {
  auto a = testing::New();
  if (!a) return nullptr;
  Eval(*a, "n = 0");
  Save(*a);
  if (SettleUntilReused(*a) < 0) {
    ADD_FAILURE() << "no save ever reused its candidates";
    return nullptr;
  }
  return a;
}

TEST(CandidateReuse, SmallExecutionsReuseAndEverySaveHoldsItsExecution) {
  auto a = testing::New();
  ASSERT_TRUE(a);
  Eval(*a, "n = 0\nwords = {}");
  EXPECT_FALSE(Save(*a).candidates_reused);  // nothing to reuse yet
  ASSERT_GE(SettleUntilReused(*a), 0) << "no save ever reused its candidates";
  // Saved one after another (as a server does), checked after.
  int reused = 0;
  std::vector<std::pair<std::string, std::string>> saves;  // snapshot, expected words
  for (int i = 0; i < 30; i++) {
    const std::string words = Eval(*a, "n += 1\nwords[n % 7] = 'w' * (n % 50)\nsorted(words.items()), n");
    Sandbox::PagesSave saved = Save(*a);
    reused += saved.candidates_reused;
    saves.emplace_back(saved.snapshot, words);
  }
  // Most of them on a server (its threads' heaps settle); here the test keeps every snapshot,
  // and its heap's growth faults some executions: at least some reuse, all correct.
  EXPECT_GE(reused, 3) << "steady small executions should mostly not fault";
  for (const auto& [snapshot, words] : saves) EXPECT_EQ(EvalRestored(snapshot, "sorted(words.items()), n"), words);
}

TEST(CandidateReuse, AnExecutionThatTakesNewMemoryIsWalked) {
  auto a = SettledSandbox();
  ASSERT_TRUE(a);
  Eval(*a, "big = bytearray(24 << 20)\nbig[-1] = 7\nbig[12345678] = 9\nlen(big)");
  Sandbox::PagesSave saved = Save(*a);
  EXPECT_FALSE(saved.candidates_reused);
  EXPECT_EQ(EvalRestored(saved.snapshot, "(len(big), big[-1], big[12345678], n)"), Eval(*a, "(len(big), big[-1], big[12345678], n)"));
  // Written again without new pages: may reuse, and still holds the change.
  ASSERT_GE(SettleUntilReused(*a), 0);
  Eval(*a, "big[-1] = 8");
  saved = Save(*a);
  EXPECT_EQ(EvalRestored(saved.snapshot, "big[-1]"), "8");
}

TEST(CandidateReuse, FirstWritesToImagePagesAreSaved) {
  auto a = SettledSandbox();
  ASSERT_TRUE(a);
  // Objects of the image that this sandbox has not written yet: their pages are still the
  // image's until these writes (copy-on-write faults).
  const std::string change =
      "import string, textwrap, collections, json, re, base64\n"
      "for m in (string, textwrap, collections, json, re, base64):\n"
      "    m.brig_mark = m.__name__ * 3\n"
      "string.ascii_letters = 'changed'\n";
  Eval(*a, change);
  Sandbox::PagesSave saved = Save(*a);
  const std::string check =
      "import string, textwrap, collections, json, re, base64\n"
      "[m.brig_mark for m in (string, textwrap, collections, json, re, base64)] + [string.ascii_letters]";
  EXPECT_EQ(EvalRestored(saved.snapshot, check), Eval(*a, check));
}

TEST(CandidateReuse, AnythingButAnExecutionMakesTheNextSaveWalk) {
  auto a = SettledSandbox();
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->WriteFile("/tmp/f.txt", "x").ok());
  EXPECT_FALSE(Save(*a).candidates_reused);

  ASSERT_GE(SettleUntilReused(*a), 0);
  Sandbox::PagesSave before = Save(*a);
  Eval(*a, "n = 1000");
  ASSERT_TRUE(a->RestorePages(before.snapshot).ok());  // back to the state of `before`
  Sandbox::PagesSave after = Save(*a);
  EXPECT_FALSE(after.candidates_reused);
  EXPECT_EQ(EvalRestored(after.snapshot, "n"), Eval(*a, "n"));

  // Many executions between two saves: watching them all would cost more than the walk.
  ASSERT_GE(SettleUntilReused(*a), 0);
  for (int i = 0; i < 12; i++) Eval(*a, "n += 1");
  Sandbox::PagesSave later = Save(*a);
  EXPECT_FALSE(later.candidates_reused);
  EXPECT_EQ(EvalRestored(later.snapshot, "n"), Eval(*a, "n"));

  ASSERT_GE(SettleUntilReused(*a), 0);
  ASSERT_TRUE(a->Compact().ok());
  Sandbox::PagesSave woken = Save(*a);
  EXPECT_FALSE(woken.candidates_reused);
  EXPECT_EQ(EvalRestored(woken.snapshot, "n"), Eval(*a, "n"));
}

// A failed execution is rolled back: the save after it walks, and holds the state before it.
TEST(CandidateReuse, AFailedExecutionIsRolledBackAndWalked) {
  auto a = SettledSandbox();
  ASSERT_TRUE(a);
  const std::string n = Eval(*a, "n");
  ExecutionResult r = a->Execute("n = -1\nimport os\nos._exit(3)");
  EXPECT_EQ(r.failure, Failure::kExit);
  Sandbox::PagesSave saved = Save(*a);
  EXPECT_FALSE(saved.candidates_reused);
  EXPECT_EQ(EvalRestored(saved.snapshot, "n"), n);
}

}  // namespace
}  // namespace brig
