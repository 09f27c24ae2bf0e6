// A destroyed sandbox's memory is reset to the image and kept for the next one
// (src/engine/memory_slots.h): the next sandbox must see exactly the image, nothing of the
// last one.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "brig/sandbox.h"
#include "test_sandbox.h"
#include "engine/guest_call.h"
#include "engine/page_snapshot.h"
#include "engine/python_instance.h"
#include "sandbox/sandbox_impl.h"

namespace {

constexpr uint64_t kWasmPage = 65536;

const brig_python_image* Image() {
  std::string why;
  const brig_python_image* image = brig::ProcessImage(&why);
  EXPECT_NE(image, nullptr) << why;
  return image;
}

// A host side to clone into (the instances here never run: the host writes their memory).
std::unique_ptr<brig::Sandbox::Impl> Host() {
  auto impl = brig::NewImpl(brig::Limits{});
  EXPECT_TRUE(impl.ok());
  return std::move(impl.value());
}

brig_python_instance* Clone(brig::Sandbox::Impl* host, uint32_t limit_pages = 0) {
  brig_python_instance* p = brig_python_instance_clone(Image(), host->wasi.get(), limit_pages);
  EXPECT_NE(p, nullptr);
  return p;
}

// Clones until no kept memory is left (held in *held), so that the next clone maps afresh.
void EmptySlots(brig::Sandbox::Impl* host, std::vector<brig_python_instance*>* held) {
  while (brig_python_image_kept_memories(Image()) > 0) held->push_back(Clone(host));
}

// 1 if bytes [from, to) of `p` are all zero.
bool ZeroRange(brig_python_instance* p, uint64_t from, uint64_t to) {
  const uint8_t* d = brig_python_instance_memory(p)->data;
  for (uint64_t i = from; i < to; i++) {
    if (d[i]) return false;
  }
  return true;
}

// Reads the memory's byte at `offset` as guest code would: a fault there is a trap.
struct ReadAt {
  const uint8_t* data;
  uint64_t offset;
  uint8_t value;
};
void DoRead(void* arg) {
  auto* r = static_cast<ReadAt*>(arg);
  r->value = *static_cast<const volatile uint8_t*>(r->data + r->offset);
}
bool Traps(brig_python_instance* p, uint64_t offset) {
  ReadAt r{brig_python_instance_memory(p)->data, offset, 0};
  brig_call_outcome o = brig_guest_call(brig_python_instance_memory(p), DoRead, &r);
  return o.status == BRIG_CALL_TRAPPED && o.trap == WASM_RT_TRAP_OOB;
}

TEST(MemoryReuse, ReusedMemoryHoldsExactlyTheImage) {
  const brig_python_image* image = Image();
  ASSERT_NE(image, nullptr);
  const uint64_t image_bytes = brig_python_image_memory_bytes(image);
  auto host = Host();
  std::vector<brig_python_instance*> held;
  EmptySlots(host.get(), &held);

  // A sandbox that wrote everywhere it could: the whole image range, grown memory, globals.
  brig_python_instance* dirty = Clone(host.get());
  ASSERT_EQ(brig_python_instance_grow_to(dirty, image_bytes / kWasmPage + 64), 0);
  wasm_rt_memory_t* m = brig_python_instance_memory(dirty);
  std::memset(m->data, 0xA5, m->size);
  uint64_t g = 12345;
  ASSERT_EQ(brig_python_instance_set_globals(dirty, &g, 1), 0);
  const uint8_t* dirty_data = m->data;
  brig_python_instance_destroy(dirty);
  ASSERT_EQ(brig_python_image_kept_memories(image), 1u);

  brig_python_instance* reused = Clone(host.get());
  ASSERT_EQ(brig_python_image_kept_memories(image), 0u);
  wasm_rt_memory_t* r = brig_python_instance_memory(reused);
  EXPECT_EQ(r->data, dirty_data);  // the same memory, reset
  EXPECT_EQ(r->size, image_bytes);
  brig_python_instance* fresh = Clone(host.get());  // mapped afresh: the image's bytes
  wasm_rt_memory_t* f = brig_python_instance_memory(fresh);
  EXPECT_NE(f->data, dirty_data);
  ASSERT_EQ(f->size, image_bytes);
  EXPECT_EQ(std::memcmp(r->data, f->data, image_bytes), 0);
  uint64_t g_reused = 0, g_fresh = 1;
  brig_python_instance_get_globals(reused, &g_reused, 1);
  brig_python_instance_get_globals(fresh, &g_fresh, 1);
  EXPECT_EQ(g_reused, g_fresh);
  // What the last one grew into is out of bounds again (guard pages are the only bounds check)...
  EXPECT_FALSE(Traps(reused, image_bytes - 1));
  EXPECT_TRUE(Traps(reused, image_bytes));
  EXPECT_TRUE(Traps(reused, image_bytes + 64 * kWasmPage - 1));
  // ... and zeros once grown into.
  ASSERT_EQ(brig_python_instance_grow_to(reused, image_bytes / kWasmPage + 128), 0);
  EXPECT_TRUE(ZeroRange(reused, image_bytes, r->size));
  // Nothing of it differs from the image for a page snapshot either.
  auto count = [](void*, uint32_t, const uint8_t*, const uint8_t*) { return 0; };
  EXPECT_EQ(brig_python_instance_diff(image, reused, count, nullptr), 0);

  brig_python_instance_destroy(fresh);
  brig_python_instance_destroy(reused);
  for (brig_python_instance* p : held) brig_python_instance_destroy(p);
}

TEST(MemoryReuse, MemoryLimitIsTheNewSandboxes) {
  const brig_python_image* image = Image();
  ASSERT_NE(image, nullptr);
  const uint32_t image_pages = brig_python_image_memory_bytes(image) / kWasmPage;
  auto host = Host();
  brig_python_instance* big = Clone(host.get());
  ASSERT_EQ(brig_python_instance_grow_to(big, image_pages + 200), 0);
  brig_python_instance_destroy(big);
  ASSERT_GT(brig_python_image_kept_memories(image), 0u);
  brig_python_instance* small = Clone(host.get(), image_pages + 10);
  EXPECT_EQ(brig_python_instance_grow_to(small, image_pages + 10), 0);
  EXPECT_NE(brig_python_instance_grow_to(small, image_pages + 11), 0);
  brig_python_instance_destroy(small);
  brig_python_instance* large = Clone(host.get(), image_pages + 300);
  EXPECT_EQ(brig_python_instance_grow_to(large, image_pages + 300), 0);
  EXPECT_TRUE(ZeroRange(large, uint64_t{image_pages} * kWasmPage, uint64_t{image_pages + 300} * kWasmPage));
  brig_python_instance_destroy(large);
}

using brig::testing::Eval;
using brig::testing::New;

// What a sandbox leaves behind, and the check that the next one sees none of it.
const char kDirty[] =
    "import json, sys\n"
    "marker = bytearray(b'\\xde\\xad\\xbe\\xef') * (8 << 20)\n"  // 32 MiB: the memory grows
    "json.leaked = 'yes'\n"
    "sys.leaked = marker[:4]\n"
    "len(marker)";
const char kClean[] =
    "import json, sys, gc\n"
    "('marker' in globals(), hasattr(json, 'leaked'), hasattr(sys, 'leaked'),"
    " any(isinstance(o, bytearray) and o[:4] == b'\\xde\\xad\\xbe\\xef' for o in gc.get_objects()))";

TEST(MemoryReuse, PythonSeesACleanInterpreter) {
  const brig_python_image* image = Image();
  ASSERT_NE(image, nullptr);
  {
    auto a = New();
    ASSERT_TRUE(a);
    EXPECT_EQ(Eval(*a, kDirty), std::to_string(32 << 20));
    EXPECT_GT(a->GuestMemoryBytes(), brig_python_image_memory_bytes(image));
  }
  uint32_t kept = brig_python_image_kept_memories(image);
  ASSERT_GT(kept, 0u);
  auto b = New();
  ASSERT_TRUE(b);
  EXPECT_EQ(brig_python_image_kept_memories(image), kept - 1);
  EXPECT_EQ(b->GuestMemoryBytes(), brig_python_image_memory_bytes(image));
  EXPECT_EQ(Eval(*b, kClean), "(False, False, False, False)");
  EXPECT_EQ(Eval(*b, "x = 6\nx * 7"), "42");
}

TEST(MemoryReuse, ForksSnapshotsAndRollbackOfAReusedSandbox) {
  const brig_python_image* image = Image();
  ASSERT_NE(image, nullptr);
  { auto a = New(); ASSERT_TRUE(a); Eval(*a, kDirty); }
  ASSERT_GT(brig_python_image_kept_memories(image), 0u);
  auto b = New();
  ASSERT_TRUE(b);
  Eval(*b, "x = 41");
  auto fork = b->Fork();
  ASSERT_TRUE(fork.ok()) << fork.status().message();
  EXPECT_EQ(Eval(*fork.value(), "x + 1"), "42");
  auto pages = b->SavePages();
  ASSERT_TRUE(pages.ok()) << pages.status().message();
  EXPECT_LT(pages.value().size(), 200u << 10);  // pages equal to the image are not in it
  auto c = New();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->RestorePages(pages.value()).ok());
  EXPECT_EQ(Eval(*c, "x"), "41");
  brig::ExecutionResult crash = b->Execute("x = 0\nimport os\nos._exit(3)");
  EXPECT_FALSE(crash.ok);
  EXPECT_EQ(Eval(*b, "x"), "41");
  ASSERT_TRUE(b->Compact().ok());
  EXPECT_EQ(Eval(*b, "x"), "41");
  EXPECT_EQ(Eval(*c, kClean), "(False, False, False, False)");
}

TEST(MemoryReuse, ManyCyclesOnTwoThreads) {
  auto cycle = [](int thread, int* failures) {
    for (int i = 0; i < 150; ++i) {
      auto s = New();
      if (!s) return void(++*failures);
      std::string tag = std::to_string(thread) + "-" + std::to_string(i);
      std::string code = std::string("import json\n") +
                         "r = (globals().get('tag'), getattr(json, 'tag', None))\n"
                         "tag = json.tag = '" + tag + "'\n"
                         "buf = bytearray(b'" + tag + "') * " + std::to_string(1000 * (i % 7)) + "\n"
                         "r + (tag, len(buf))";
      std::string want = "(None, None, '" + tag + "', " + std::to_string(tag.size() * 1000 * (i % 7)) + ")";
      brig::ExecutionResult r = s->Execute(code);
      if (!r.ok || r.result.value_or("") != want) {
        ADD_FAILURE() << "thread " << thread << " cycle " << i << ": " << r.result.value_or("<none>") << r.stderr_text;
        ++*failures;
      }
    }
  };
  int f0 = 0, f1 = 0;
  std::thread t0(cycle, 0, &f0), t1(cycle, 1, &f1);
  t0.join();
  t1.join();
  EXPECT_EQ(f0 + f1, 0);
}

}  // namespace
