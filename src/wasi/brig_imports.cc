// brig's own host calls for the guest (what WASI preview 1 lacks: file modes, statvfs,
// eventfd, named pipes, extended attributes), as extern "C" entry points with the signatures wasm2c 1.0.32 declares for them.
// The guest imports them from the wasi_snapshot_preview1 module under names starting with
// brig_ (guest/libc_perms.c), so they take the same import object as WASI's calls and reach
// the sandbox's WasiContext; each forwards like wasi_imports.cc. Compiled by the engine
// target, not by brig_wasi.
#include <cstdint>

#include <type_traits>

#include "engine/guest_call.h"
#include "engine/wasm-rt.h"
#include "wasi/wasi_context.h"
#include "wasi/wasi_instance.h"

namespace {

using brig::wasi::GuestMemory;
using brig::wasi::WasiContext;
using Inst = struct Z_wasi_snapshot_preview1_instance_t;

// As wasi_imports.cc's Forward: nothing here has a destructor (an interrupt longjmps out of
// brig_host_leave).
template <auto Method, typename... Args>
inline uint32_t Forward(Inst* inst, Args... args) {
  static_assert(std::is_trivially_destructible_v<GuestMemory>);
  brig_host_enter();
  GuestMemory mem(inst->memory->data, inst->memory->size);
  uint32_t ret = (static_cast<WasiContext*>(inst->context)->*Method)(mem, args...);
  brig_host_leave();
  return ret;
}

}  // namespace

extern "C" uint32_t Z_wasi_snapshot_preview1Z_brig_create_mode(Inst* inst, uint32_t a0) {
  return Forward<&WasiContext::BrigCreateMode>(inst, a0);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_brig_fd_chmod(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::BrigFdChmod>(inst, a0, a1);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_brig_path_chmod(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2,
                                                              uint32_t a3) {
  return Forward<&WasiContext::BrigPathChmod>(inst, a0, a1, a2, a3);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_brig_fd_statvfs(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::BrigFdStatvfs>(inst, a0, a1);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_brig_path_statvfs(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2,
                                                                uint32_t a3) {
  return Forward<&WasiContext::BrigPathStatvfs>(inst, a0, a1, a2, a3);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_brig_path_mkfifo(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2,
                                                               uint32_t a3) {
  return Forward<&WasiContext::BrigPathMkfifo>(inst, a0, a1, a2, a3);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_brig_xattr(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                                         uint32_t a4, uint32_t a5, uint32_t a6, uint32_t a7,
                                                         uint32_t a8, uint32_t a9) {
  return Forward<&WasiContext::BrigXattr>(inst, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_brig_fd_eventfd(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2) {
  return Forward<&WasiContext::BrigFdEventfd>(inst, a0, a1, a2);
}
