// What a sandbox keeps so that an execution that fails (trap, timeout, exit) leaves it
// exactly as it was before that execution, so that it can fork, and so that it can give back
// its memory while idle. The methods that use it are Sandbox::Impl's, in transaction.cc.
//
// How rollback works, and why this way (figures in bench/RESULTS.md): copying or
// write-protecting the pages an execution will touch costs per page (~0.3 µs a copy, ~1 µs
// a write-protect fault here) and even `x = 1` touches ~130 pages (the runner's reference
// counts), which would triple its cost. Instead a sandbox keeps
//   - a checkpoint: its guest memory as a brig_python_state (what it grew into frozen in place,
//     the other pages it changed stored as their differences: tens of KiB), its file system
//     (a copy sharing file contents) and descriptors;
//   - a log of the executions since, each with the clock readings and random bytes it took
//     (wasi::Tape) and a digest of its outcome.
// A failed execution is undone by making a new instance from the checkpoint and replaying
// the log (the guest is deterministic given its inputs; a replay whose outcome differs is
// detected and the sandbox is then reported dead). A new checkpoint is taken when replaying
// the log would cost more than kReplayFactor times what the last checkpoint cost: the
// overhead per execution stays a few percent and a rollback stays short.
#ifndef BRIG_SANDBOX_TRANSACTION_H_
#define BRIG_SANDBOX_TRANSACTION_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/python_instance.h"
#include "vfs/file_system.h"
#include "wasi/tape.h"
#include "wasi/wasi_context.h"

namespace brig {

// One guest call since the checkpoint that returned (its code ran to the end or raised), with
// what it takes to run it again exactly.
struct LoggedRun {
  std::string code;
  std::string filename;
  wasi::Tape::Recording tape;
  uint64_t digest = 0;  // of its outcome (result, error, output, memory size): a replay must match
  uint64_t ns = 0;      // how long it ran, sleeps excluded: what replaying it costs
  uint32_t memory_pages = 0;  // the memory limit it ran under (ExecuteOptions::memory_bytes)
};

// A state the sandbox can be put back in.
struct Checkpoint {
  brig_python_state* memory = nullptr;  // guest memory and globals (owned reference)
  std::unique_ptr<vfs::FileSystem> fs;  // a copy: shares file contents with the live one
  std::unique_ptr<wasi::WasiContext> wasi;  // descriptors over `fs`
  Checkpoint() = default;
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;
  ~Checkpoint() {
    wasi.reset();
    brig_python_state_release(memory);
  }
};

struct TxState {
  TxState() = default;
  TxState(const TxState&) = delete;
  TxState& operator=(const TxState&) = delete;
  ~TxState() {
    brig_python_state_release(pristine);
    brig_python_state_release(shared);
  }

  // Where a rollback starts from; null until the first execution.
  std::unique_ptr<Checkpoint> checkpoint;
  // The runs since the checkpoint, in order.
  std::vector<LoggedRun> log;
  uint64_t log_ns = 0;     // sum of their ns
  uint64_t log_bytes = 0;  // what the log holds (code, recordings)
  uint64_t checkpoint_ns = 0;  // what taking the last checkpoint cost
  // The instance the checkpoint and log lead to, and the file system's generation after its
  // last run: if either changed, someone changed the sandbox outside an execution (restoring
  // a snapshot, writing a file) and the log no longer leads there: a new checkpoint is due.
  uint64_t instance_id = 0;
  uint64_t fs_generation = 0;
  // An instance just made (by Create, Fork or a rollback): its state costs nothing to
  // checkpoint. pristine_id is that instance's id; pristine its state (null: the instance's
  // backing, brig_python_instance_base_state).
  uint64_t pristine_id = 0;
  brig_python_state* pristine = nullptr;

  // The process image this sandbox's instances come from (for Impl::base_image).
  const brig_python_image* image = nullptr;

  wasi::Tape tape;                 // records runs; replays them in a rollback
  const vfs::FileSystem* hooked = nullptr;  // the file system whose clock goes through `tape`
  uint64_t slept_ns = 0;           // time spent sleeping (time.sleep) by the current run
  uint64_t runs = 0;               // runs that returned, ever: what forks' cached state is keyed by
  bool compacted = false;          // the instance is gone; the checkpoint holds everything
  bool reseed = false;             // a fork: reseed `random` before the next execution

  // Forks: the state forks of the current state start from, kept until the sandbox changes.
  std::mutex fork_mu;
  brig_python_state* shared = nullptr;
  uint64_t shared_runs = 0, shared_instance = 0, shared_fs_generation = 0;
};

}  // namespace brig

#endif  // BRIG_SANDBOX_TRANSACTION_H_
