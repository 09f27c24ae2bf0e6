// brig's wasm2c runtime: every kind of trap comes back to the caller as that trap, on any
// thread (also while another thread is inside a guest call), with the host intact; memory limits hold; guard pages catch 33-bit addresses.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include <sys/mman.h>
#include <unistd.h>

#include "engine/guest_call.h"
#include "engine/memory_files.h"
#include "traps.h"

// The module's one import, "host" "pause": what it does is up to the test (nothing by default).
struct Z_host_instance_t {
  std::function<uint32_t(uint32_t)> pause;
};
extern "C" uint32_t Z_hostZ_pause(Z_host_instance_t* host, uint32_t arg) { return host->pause ? host->pause(arg) : 0; }

namespace {

Z_host_instance_t no_host;

struct Instance {
  Instance(uint32_t limit_pages = 0, Z_host_instance_t* host = &no_host) {
    static bool once = [] {
      wasm_rt_init();
      Z_traps_init_module();
      return true;
    }();
    (void)once;
    brig_rt_set_memory_limit_pages(limit_pages);
    Z_traps_instantiate(&inst, host);
    brig_rt_set_memory_limit_pages(0);
  }
  ~Instance() { Z_traps_free(&inst); }
  Z_traps_instance_t inst;
};

struct Call {
  Z_traps_instance_t* inst;
  uint32_t arg = 0;
  double farg = 0;
  uint32_t ret = 0;
};

template <void (*Body)(Call*)>
brig_call_outcome GuestRun(Instance& i, Call& c) {
  c.inst = &i.inst;
  return brig_guest_call(Z_trapsZ_memory(&i.inst), [](void* p) { Body(static_cast<Call*>(p)); }, &c);
}

void Ok(Call* c) { c->ret = Z_trapsZ_ok(c->inst, c->arg); }
void Unreachable(Call* c) { Z_trapsZ_unreachable(c->inst); }
void DivByZero(Call* c) { c->ret = Z_trapsZ_div_by_zero(c->inst, c->arg); }
void IntOverflow(Call* c) { c->ret = Z_trapsZ_int_overflow(c->inst, c->arg); }
void InvalidConversion(Call* c) { c->ret = Z_trapsZ_invalid_conversion(c->inst, c->farg); }
void Load(Call* c) { c->ret = Z_trapsZ_load(c->inst, c->arg); }
void StoreOffset(Call* c) { Z_trapsZ_store_offset(c->inst, c->arg); }
void Grow(Call* c) { c->ret = Z_trapsZ_grow(c->inst, c->arg); }
void Recurse(Call* c) { c->ret = Z_trapsZ_recurse(c->inst, c->arg); }
void CallIndirect(Call* c) { c->ret = Z_trapsZ_call_indirect(c->inst, c->arg); }
void Paused(Call* c) { c->ret = Z_trapsZ_paused(c->inst, c->arg); }

void ExpectTrap(brig_call_outcome o, wasm_rt_trap_t want) {
  EXPECT_EQ(o.status, BRIG_CALL_TRAPPED);
  EXPECT_EQ(o.trap, want) << wasm_rt_strerror(o.trap);
}

TEST(Runtime, NormalCallReturns) {
  Instance i;
  Call c;
  c.arg = 41;
  brig_call_outcome o = GuestRun<Ok>(i, c);
  EXPECT_EQ(o.status, BRIG_CALL_RETURNED);
  EXPECT_EQ(c.ret, 42u);
}

TEST(Runtime, EveryTrapKindIsReported) {
  Instance i;
  Call c;
  ExpectTrap(GuestRun<Unreachable>(i, c), WASM_RT_TRAP_UNREACHABLE);
  c.arg = 0;
  ExpectTrap(GuestRun<DivByZero>(i, c), WASM_RT_TRAP_DIV_BY_ZERO);
  c.arg = static_cast<uint32_t>(-1);
  ExpectTrap(GuestRun<IntOverflow>(i, c), WASM_RT_TRAP_INT_OVERFLOW);
  c.farg = std::nan("");
  ExpectTrap(GuestRun<InvalidConversion>(i, c), WASM_RT_TRAP_INVALID_CONVERSION);
  c.arg = 65536;  // one byte past the single page
  ExpectTrap(GuestRun<Load>(i, c), WASM_RT_TRAP_OOB);
  c.arg = 0xfffffffc;  // the last 4 bytes of the 32-bit space
  ExpectTrap(GuestRun<Load>(i, c), WASM_RT_TRAP_OOB);
  c.arg = 0x20;  // + offset 0xfffffff0: past 4 GiB, inside the guard
  ExpectTrap(GuestRun<StoreOffset>(i, c), WASM_RT_TRAP_OOB);
  c.arg = 5;  // past the end of the 2-entry table
  ExpectTrap(GuestRun<CallIndirect>(i, c), WASM_RT_TRAP_CALL_INDIRECT);
  // The instance still works after all of that.
  c.arg = 1;
  EXPECT_EQ(GuestRun<Ok>(i, c).status, BRIG_CALL_RETURNED);
  EXPECT_EQ(c.ret, 2u);
}

TEST(Runtime, NativeStackExhaustionIsATrap) {
  Instance i;
  Call c;
  ExpectTrap(GuestRun<Recurse>(i, c), WASM_RT_TRAP_EXHAUSTION);
  // And again: the alternate stack and the handler survive the first overflow.
  ExpectTrap(GuestRun<Recurse>(i, c), WASM_RT_TRAP_EXHAUSTION);
}

TEST(Runtime, NativeStackExhaustionOnAnotherThread) {
  brig_call_outcome o{};
  std::thread t([&] {
    Instance i;
    Call c;
    o = GuestRun<Recurse>(i, c);
  });
  t.join();
  ExpectTrap(o, WASM_RT_TRAP_EXHAUSTION);
}

TEST(Runtime, MemoryLimitCapsGrowth) {
  Instance limited(1);  // the module starts at 1 page and may not grow
  Call c;
  c.arg = 1;
  EXPECT_EQ(GuestRun<Grow>(limited, c).status, BRIG_CALL_RETURNED);
  EXPECT_EQ(c.ret, UINT32_MAX);
  Instance free_to_grow;  // module maximum: 2 pages
  EXPECT_EQ(GuestRun<Grow>(free_to_grow, c).status, BRIG_CALL_RETURNED);
  EXPECT_EQ(c.ret, 1u);
  c.arg = 65536 + 100;  // now readable
  EXPECT_EQ(GuestRun<Load>(free_to_grow, c).status, BRIG_CALL_RETURNED);
}

// SIGSEGV sent by another process (kill -SEGV) is not a fault: it kills, as it would any
// process, also while guest code runs (the fault handler must not swallow it).
TEST(RuntimeDeathTest, SigsegvSentByKillKills) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Instance i;
        Call c;
        (void)GuestRun<Ok>(i, c);  // the handlers are installed
        kill(getpid(), SIGSEGV);
        std::this_thread::sleep_for(std::chrono::seconds(5));
        std::exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

// A memory's maximum changes while it lives (a per-execution memory limit): raised after its
// growth file was mapped under the old maximum, growth past that still lands in the file, so
// that freezing the growth keeps every byte (without the extension it would fault).
TEST(Runtime, RaisingTheMaximumExtendsTheGrowthFile) {
  constexpr uint32_t kPage = 65536;
  int image = memfd_create("test-image", MFD_CLOEXEC);
  ASSERT_GE(image, 0);
  ASSERT_EQ(ftruncate(image, kPage), 0);
  wasm_rt_memory_t m{};
  ASSERT_EQ(brig_rt_map_memory_image(&m, image, kPage, 4), 0);
  ASSERT_EQ(brig_rt_memory_use_growth_file(&m), 0);
  EXPECT_EQ(wasm_rt_grow_memory(&m, 1), 1u);  // the file is mapped for pages 1..3
  m.data[2 * kPage - 1] = 11;
  EXPECT_EQ(wasm_rt_grow_memory(&m, 8), UINT32_MAX);  // past the maximum of 4
  EXPECT_EQ(brig_rt_memory_set_max_pages(&m, 1), -1);  // below its size: refused
  EXPECT_EQ(m.max_pages, 4u);
  ASSERT_EQ(brig_rt_memory_set_max_pages(&m, 16), 0);
  EXPECT_EQ(wasm_rt_grow_memory(&m, 8), 2u);
  m.data[10 * kPage - 1] = 22;
  uint64_t start = 0;
  int error = 0;
  brig_mem_file* frozen = brig_rt_memory_freeze_growth(&m, &start, &error);
  ASSERT_NE(frozen, nullptr);
  EXPECT_EQ(error, 0);
  EXPECT_EQ(start, kPage);
  EXPECT_EQ(brig_mem_file_bytes(frozen), 9ull * kPage);
  EXPECT_EQ(m.data[2 * kPage - 1], 11);
  EXPECT_EQ(m.data[10 * kPage - 1], 22);
  // Lowered back: no more growth, what it holds stays.
  ASSERT_EQ(brig_rt_memory_set_max_pages(&m, 10), 0);
  EXPECT_EQ(wasm_rt_grow_memory(&m, 1), UINT32_MAX);
  brig_mem_file_unref(frozen);
  wasm_rt_free_memory(&m);
  close(image);
}

// Growth up to the very maximum leaves no tail past it to map: the freeze still succeeds
// (it once tried a 0-byte mmap, failed, and declared the memory damaged).
TEST(Runtime, FreezingGrowthThatReachedTheMaximum) {
  constexpr uint32_t kPage = 65536;
  int image = memfd_create("test-image", MFD_CLOEXEC);
  ASSERT_GE(image, 0);
  ASSERT_EQ(ftruncate(image, kPage), 0);
  wasm_rt_memory_t m{};
  ASSERT_EQ(brig_rt_map_memory_image(&m, image, kPage, 4), 0);
  ASSERT_EQ(brig_rt_memory_use_growth_file(&m), 0);
  EXPECT_EQ(wasm_rt_grow_memory(&m, 3), 1u);  // pages 1..3: all the maximum allows
  m.data[4 * kPage - 1] = 33;
  uint64_t start = 0;
  int error = 0;
  brig_mem_file* frozen = brig_rt_memory_freeze_growth(&m, &start, &error);
  ASSERT_NE(frozen, nullptr);
  EXPECT_EQ(error, 0);
  EXPECT_EQ(start, kPage);
  EXPECT_EQ(brig_mem_file_bytes(frozen), 3ull * kPage);
  EXPECT_EQ(m.data[4 * kPage - 1], 33);
  m.data[4 * kPage - 1] = 34;  // still writable, privately
  EXPECT_EQ(m.data[4 * kPage - 1], 34);
  brig_mem_file_unref(frozen);
  wasm_rt_free_memory(&m);
  close(image);
}

// Clean calls on one thread, 200 traps on another, interleaved: the trapping thread waits
// for a clean call to finish before each trap, so clean calls demonstrably run between the
// first and the last trap.
TEST(Runtime, TrapsOnOneThreadDoNotDisturbAnother) {
  constexpr int kTraps = 200;
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0}, clean{0};
  std::thread worker([&] {
    Instance i;
    Call c;
    while (!stop.load()) {
      c.arg = 7;
      brig_call_outcome o = GuestRun<Ok>(i, c);
      if (o.status != BRIG_CALL_RETURNED || c.ret != 8) wrong.fetch_add(1);
      clean.fetch_add(1);
    }
  });
  int traps = 0, clean_after_first = 0, clean_before_last = 0;
  for (int k = 0; k < kTraps; ++k) {
    for (int seen = clean.load(); clean.load() == seen;) std::this_thread::yield();
    if (k == kTraps - 1) clean_before_last = clean.load();
    Instance i;
    Call c;
    c.arg = 1 << 20;
    brig_call_outcome o = GuestRun<Load>(i, c);
    traps += o.status == BRIG_CALL_TRAPPED && o.trap == WASM_RT_TRAP_OOB;
    if (k == 0) clean_after_first = clean.load();
  }
  stop = true;
  worker.join();
  EXPECT_EQ(traps, kTraps);
  EXPECT_EQ(wrong.load(), 0);
  // At least one clean call finished between each two traps.
  EXPECT_GE(clean_before_last - clean_after_first, kTraps - 1);
}

// Stronger: each trap happens while the clean thread is inside a guest call (held in the host
// import "pause" halfway through it), and that call then finishes with the right value, or,
// every other round, traps itself on its own thread after the other thread's trap. A runtime
// with process-wide trap state (Debian's) jumps into the wrong thread's stack here.
TEST(Runtime, TrapsOnOneThreadWhileAnotherIsInsideAGuestCall) {
  constexpr uint32_t kRounds = 100;
  std::mutex mu;
  std::condition_variable cv;
  uint32_t paused_in = 0;  // the round whose call is held in "pause" (0: none)
  uint32_t released = 0;   // the last round allowed to leave "pause"
  bool clean_done = false;
  Z_host_instance_t host;
  host.pause = [&](uint32_t round) -> uint32_t {
    std::unique_lock<std::mutex> lock(mu);
    paused_in = round;
    cv.notify_all();
    cv.wait(lock, [&] { return released >= round; });
    paused_in = 0;
    return round % 2 ? 0 : 1u << 20;  // even rounds: a load past the memory next
  };
  int clean_wrong = 0, clean_traps = 0, clean_returns = 0;
  std::thread clean([&] {
    Instance i(0, &host);
    for (uint32_t round = 1; round <= kRounds; ++round) {
      Call c;
      c.arg = round;
      brig_call_outcome o = GuestRun<Paused>(i, c);
      if (round % 2) {
        bool right = o.status == BRIG_CALL_RETURNED && c.ret == round + 1;
        clean_returns += right;
        clean_wrong += !right;
      } else {
        bool right = o.status == BRIG_CALL_TRAPPED && o.trap == WASM_RT_TRAP_OOB;
        clean_traps += right;
        clean_wrong += !right;
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    clean_done = true;
    cv.notify_all();
  });
  int traps_while_inside = 0;
  Instance i;
  for (;;) {
    uint32_t round;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return paused_in > released || clean_done; });  // a round not yet released
      if (clean_done) break;
      round = paused_in;
    }
    Call c;
    c.arg = 1 << 20;
    brig_call_outcome o = GuestRun<Load>(i, c);
    std::lock_guard<std::mutex> lock(mu);
    // The clean call of this round is still held inside the guest.
    traps_while_inside += o.status == BRIG_CALL_TRAPPED && o.trap == WASM_RT_TRAP_OOB && paused_in == round;
    released = round;
    cv.notify_all();
  }
  clean.join();
  EXPECT_EQ(traps_while_inside, static_cast<int>(kRounds));
  EXPECT_EQ(clean_wrong, 0);
  EXPECT_EQ(clean_returns, static_cast<int>(kRounds / 2));
  EXPECT_EQ(clean_traps, static_cast<int>(kRounds / 2));
  // Both instances still work.
  Call c;
  c.arg = 1;
  EXPECT_EQ(GuestRun<Ok>(i, c).status, BRIG_CALL_RETURNED);
  EXPECT_EQ(c.ret, 2u);
}

}  // namespace
