// The wasi_snapshot_preview1 imports of the wasm2c-generated guest: 45 WASI extern "C" entry
// points with exactly the signatures wasm2c 1.0.32 declares, each forwarding to the sandbox's
// WasiContext with a GuestMemory built fresh from the instance's memory (its size changes
// as the guest grows memory), plus brig's own calls (brig_*, not WASI; the guest imports them
// under the same module). Compiled by the engine target, not by brig_wasi.
//
// WasiContext members never throw, so no C++ exception crosses these C frames; proc_exit
// leaves guest execution through brig_guest_exit (a longjmp) from a frame holding no C++
// object with a destructor.
#include <cstdint>

#include <type_traits>

#include "engine/guest_call.h"
#include "engine/guest_exit.h"
#include "engine/wasm-rt.h"
#include "wasi/wasi_context.h"
#include "wasi/wasi_instance.h"

namespace {

using brig::wasi::GuestMemory;
using brig::wasi::WasiContext;
using Inst = struct Z_wasi_snapshot_preview1_instance_t;

inline WasiContext* Ctx(Inst* inst) { return static_cast<WasiContext*>(inst->context); }

// brig_host_enter/leave bracket the host's work so that an interrupt (timeout) waits for it
// and then leaves the guest from brig_host_leave: a longjmp out of this frame, which is why
// nothing here has a destructor (GuestMemory is trivially destructible).
template <auto Method, typename... Args>
inline uint32_t Forward(Inst* inst, Args... args) {
  static_assert(std::is_trivially_destructible_v<GuestMemory>);
  brig_host_enter();
  GuestMemory mem(inst->memory->data, inst->memory->size);
  uint32_t ret = (Ctx(inst)->*Method)(mem, args...);
  brig_host_leave();
  return ret;
}

}  // namespace

extern "C" uint32_t Z_wasi_snapshot_preview1Z_args_get(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::ArgsGet>(inst, a0, a1);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_args_sizes_get(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::ArgsSizesGet>(inst, a0, a1);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_clock_res_get(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::ClockResGet>(inst, a0, a1);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_clock_time_get(Inst* inst, uint32_t a0, uint64_t a1, uint32_t a2) {
  return Forward<&WasiContext::ClockTimeGet>(inst, a0, a1, a2);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_environ_get(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::EnvironGet>(inst, a0, a1);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_environ_sizes_get(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::EnvironSizesGet>(inst, a0, a1);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_advise(Inst* inst, uint32_t a0, uint64_t a1, uint64_t a2, uint32_t a3) {
  return Forward<&WasiContext::FdAdvise>(inst, a0, a1, a2, a3);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_allocate(Inst* inst, uint32_t a0, uint64_t a1, uint64_t a2) {
  return Forward<&WasiContext::FdAllocate>(inst, a0, a1, a2);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_close(Inst* inst, uint32_t a0) {
  return Forward<&WasiContext::FdClose>(inst, a0);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_datasync(Inst* inst, uint32_t a0) {
  return Forward<&WasiContext::FdDatasync>(inst, a0);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_get(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::FdFdstatGet>(inst, a0, a1);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_set_flags(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::FdFdstatSetFlags>(inst, a0, a1);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_set_rights(Inst* inst, uint32_t a0, uint64_t a1, uint64_t a2) {
  return Forward<&WasiContext::FdFdstatSetRights>(inst, a0, a1, a2);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_filestat_get(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::FdFilestatGet>(inst, a0, a1);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_filestat_set_size(Inst* inst, uint32_t a0, uint64_t a1) {
  return Forward<&WasiContext::FdFilestatSetSize>(inst, a0, a1);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_filestat_set_times(Inst* inst, uint32_t a0, uint64_t a1, uint64_t a2, uint32_t a3) {
  return Forward<&WasiContext::FdFilestatSetTimes>(inst, a0, a1, a2, a3);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_pread(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint64_t a3, uint32_t a4) {
  return Forward<&WasiContext::FdPread>(inst, a0, a1, a2, a3, a4);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_prestat_dir_name(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2) {
  return Forward<&WasiContext::FdPrestatDirName>(inst, a0, a1, a2);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_prestat_get(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::FdPrestatGet>(inst, a0, a1);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_pwrite(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint64_t a3, uint32_t a4) {
  return Forward<&WasiContext::FdPwrite>(inst, a0, a1, a2, a3, a4);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_read(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3) {
  return Forward<&WasiContext::FdRead>(inst, a0, a1, a2, a3);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_readdir(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint64_t a3, uint32_t a4) {
  return Forward<&WasiContext::FdReaddir>(inst, a0, a1, a2, a3, a4);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_renumber(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::FdRenumber>(inst, a0, a1);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_seek(Inst* inst, uint32_t a0, uint64_t a1, uint32_t a2, uint32_t a3) {
  return Forward<&WasiContext::FdSeek>(inst, a0, a1, a2, a3);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_sync(Inst* inst, uint32_t a0) {
  return Forward<&WasiContext::FdSync>(inst, a0);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_tell(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::FdTell>(inst, a0, a1);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_fd_write(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3) {
  return Forward<&WasiContext::FdWrite>(inst, a0, a1, a2, a3);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_path_create_directory(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2) {
  return Forward<&WasiContext::PathCreateDirectory>(inst, a0, a1, a2);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_path_filestat_get(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t a4) {
  return Forward<&WasiContext::PathFilestatGet>(inst, a0, a1, a2, a3, a4);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_path_filestat_set_times(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint64_t a4, uint64_t a5, uint32_t a6) {
  return Forward<&WasiContext::PathFilestatSetTimes>(inst, a0, a1, a2, a3, a4, a5, a6);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_path_link(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t a4, uint32_t a5, uint32_t a6) {
  return Forward<&WasiContext::PathLink>(inst, a0, a1, a2, a3, a4, a5, a6);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_path_open(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t a4, uint64_t a5, uint64_t a6, uint32_t a7, uint32_t a8) {
  return Forward<&WasiContext::PathOpen>(inst, a0, a1, a2, a3, a4, a5, a6, a7, a8);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_path_readlink(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t a4, uint32_t a5) {
  return Forward<&WasiContext::PathReadlink>(inst, a0, a1, a2, a3, a4, a5);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_path_remove_directory(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2) {
  return Forward<&WasiContext::PathRemoveDirectory>(inst, a0, a1, a2);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_path_rename(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t a4, uint32_t a5) {
  return Forward<&WasiContext::PathRename>(inst, a0, a1, a2, a3, a4, a5);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_path_symlink(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t a4) {
  return Forward<&WasiContext::PathSymlink>(inst, a0, a1, a2, a3, a4);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_path_unlink_file(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2) {
  return Forward<&WasiContext::PathUnlinkFile>(inst, a0, a1, a2);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_poll_oneoff(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3) {
  return Forward<&WasiContext::PollOneoff>(inst, a0, a1, a2, a3);
}

extern "C" void Z_wasi_snapshot_preview1Z_proc_exit(Inst* inst, uint32_t code) {
  // Nothing with a destructor is alive in this frame: brig_guest_exit longjmps out of it.
  Ctx(inst)->ProcExit(code);
  brig_guest_exit(code);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_random_get(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::RandomGet>(inst, a0, a1);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_sched_yield(Inst* inst) { return Ctx(inst)->SchedYield(); }

extern "C" uint32_t Z_wasi_snapshot_preview1Z_sock_accept(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2) {
  return Forward<&WasiContext::SockAccept>(inst, a0, a1, a2);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_sock_recv(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t a4, uint32_t a5) {
  return Forward<&WasiContext::SockRecv>(inst, a0, a1, a2, a3, a4, a5);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_sock_send(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t a4) {
  return Forward<&WasiContext::SockSend>(inst, a0, a1, a2, a3, a4);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_sock_shutdown(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::SockShutdown>(inst, a0, a1);
}

// brig's own calls (not WASI preview 1), imported by the guest under the same module.
extern "C" uint32_t Z_wasi_snapshot_preview1Z_brig_fd_pipe(Inst* inst, uint32_t a0) {
  return Forward<&WasiContext::BrigFdPipe>(inst, a0);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_brig_fd_dup(Inst* inst, uint32_t a0, uint32_t a1, uint32_t a2) {
  return Forward<&WasiContext::BrigFdDup>(inst, a0, a1, a2);
}

extern "C" uint32_t Z_wasi_snapshot_preview1Z_brig_fd_dup2(Inst* inst, uint32_t a0, uint32_t a1) {
  return Forward<&WasiContext::BrigFdDup2>(inst, a0, a1);
}
