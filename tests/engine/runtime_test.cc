// brig's wasm2c runtime: every kind of trap comes back to the caller as that trap, on any
// thread, with the host intact; memory limits hold; guard pages catch 33-bit addresses.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <thread>

#include "engine/guest_call.h"
#include "traps.h"

namespace {

struct Instance {
  Instance(uint32_t limit_pages = 0) {
    static bool once = [] {
      wasm_rt_init();
      Z_traps_init_module();
      return true;
    }();
    (void)once;
    brig_rt_set_memory_limit_pages(limit_pages);
    Z_traps_instantiate(&inst);
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

TEST(Runtime, TrapsOnOneThreadDoNotDisturbAnother) {
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
  int traps = 0;
  for (int k = 0; k < 200; ++k) {
    Instance i;
    Call c;
    c.arg = 1 << 20;
    brig_call_outcome o = GuestRun<Load>(i, c);
    traps += o.status == BRIG_CALL_TRAPPED && o.trap == WASM_RT_TRAP_OOB;
  }
  while (clean.load() < 1000) std::this_thread::yield();
  stop = true;
  worker.join();
  EXPECT_EQ(traps, 200);
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
