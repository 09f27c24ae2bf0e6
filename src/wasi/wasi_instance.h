/* The import object wasm2c's generated guest code hands to every WASI import: generated
 * code declares `struct Z_wasi_snapshot_preview1_instance_t` and brig defines it here.
 * C-compatible because the generated C sees it too. */
#ifndef BRIG_WASI_WASI_INSTANCE_H_
#define BRIG_WASI_WASI_INSTANCE_H_

#include "engine/wasm-rt.h"

struct Z_wasi_snapshot_preview1_instance_t {
  /* brig::wasi::WasiContext*, owned by the sandbox; outlives every guest call. */
  void* context;
  /* The guest's linear memory (inside the guest instance). Read `size` on every call:
   * it grows while the guest runs. */
  wasm_rt_memory_t* memory;
};

#endif
